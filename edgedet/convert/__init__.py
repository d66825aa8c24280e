"""TensorFlow detectors → full-integer TFLite models with a model card and fidelity report.

Only this package imports TensorFlow, and only inside functions, so the runtime never
pays for it. Entry point: `edgedet.convert.pipeline.convert` (the `edgedet convert` CLI).

Modules, in data-flow order: `calibration` (frames, hold-out, representative dataset),
`odapi` (TF1 OD API SSD graphs: cut tensors, anchor spec), `tf2` (SavedModel and Keras
sources), `quantize` (TFLiteConverter), `verify` (op counts, float leftovers),
`fidelity` (AP and agreement metrics), `output` (atomic model + card writing).
"""
