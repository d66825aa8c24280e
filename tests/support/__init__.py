"""Test support shared by the whole test tree (importable as ``support``; pytest puts
``tests/`` on ``sys.path``, and tools/ scripts add it themselves).

- ``support.reference``: the plain reference loops of DESIGN.md (IoU, greedy NMS,
  dequantize, mapping to the frame) that the fast code is checked against;
- ``support.service``: ``edgedet run`` as a subprocess and what its tests need
  (``wait_for``, ``free_port``, ``NotifyListener``, reading the JSONL log);
- ``support.broker``: a real mosquitto broker and a paho subscriber.
"""
