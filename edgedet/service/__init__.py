"""The device service behind `edgedet run`: typed config, run loop, post-NMS filters.

``config`` validates the YAML into frozen dataclasses, ``runner`` owns the loop (source →
detector → filters → publishers), ``filters`` holds the user's post-NMS filters,
``metrics`` and ``sdnotify`` are the operations side.
"""
