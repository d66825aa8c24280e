"""`Detector`: one model, ready to run on frames.

The detector binds the parts once (checked model bytes and card, interpreter and optional
Edge TPU delegate, preprocessor, decoder) and per frame runs preprocess → invoke →
decode + score filter + NMS, timing each stage. It is the only place that calls the
interpreter.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgedet.backends import get_backend
from edgedet.backends.edgetpu import load_edgetpu_delegate, wants_edgetpu
from edgedet.decoders import DecodeParams, TensorInfo, build_decoder
from edgedet.detections import Detections
from edgedet.errors import BackendError, ConfigError, InputError, LabelCountError, ModelError
from edgedet.modelcard import InputSpec, ModelCard, load_model, read_labels, ultralytics_metadata
from edgedet.preprocess import Preprocessor

log = logging.getLogger(__name__)

# How Ultralytics feeds its models (its LetterBox and predictor preprocessing): letterbox
# with gray 114 padding, RGB, pixel / 255.
ULTRALYTICS_INPUT = InputSpec(color="rgb", resize="letterbox", mean=(0.0,), std=(255.0,))


def input_layout(model_path: Path, details: Sequence[dict[str, Any]]) -> tuple[int, int, str]:
    """``(height, width, layout)`` of a model's one image input: NHWC ``[1, H, W, 3]`` (or
    ``[1, H, W, 1]``) or NCHW ``[1, 3, H, W]`` (PyTorch-converted models such as
    Ultralytics' LiteRT exports). Raises `ModelError` naming the shapes otherwise."""
    shapes = [[int(v) for v in d["shape"]] for d in details]
    if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][0] == 1:
        _, a, b, c = shapes[0]
        if c in (1, 3):
            return a, b, "nhwc"
        if a == 3:
            return b, c, "nchw"
    raise ModelError(
        f"{model_path}: expected one image input [1, H, W, 3] (NHWC) or [1, 3, H, W] "
        f"(NCHW), got {', '.join(str(shape) for shape in shapes) or 'no input'}"
    )


def cardless_card(model_path: Path, data: bytes, interpreter: Any) -> ModelCard:
    """The card of a model that has none. A YOLO model (by its embedded Ultralytics
    metadata or its output geometry, `edgedet.decoders.yolo.cardless_spec`, else by the
    shape rules of `edgedet.decoders.build_decoder`) is fed as Ultralytics feeds it
    (`ULTRALYTICS_INPUT`) and labelled by the metadata's ``names`` when present; any other
    model gets the default input spec (``(pixel - 127.5) / 127.5``, stretched) and its
    decoder is identified by its outputs."""
    from edgedet.decoders.yolo import cardless_spec

    height, width, layout = input_layout(model_path, interpreter.get_input_details())
    outputs = [TensorInfo.from_detail(d) for d in interpreter.get_output_details()]
    found = cardless_spec(outputs, (height, width), layout, ultralytics_metadata(data))
    if found is None:
        try:
            identified = build_decoder(None, outputs, None).type
        except ModelError:
            identified = ""  # reported when the detector binds its decoder
        if identified not in ("yolov5", "yolov8"):
            return ModelCard(name=model_path.stem, file=model_path.name, input=InputSpec())
        found = {}, ()
    spec, labels = found
    return ModelCard(
        name=model_path.stem,
        file=model_path.name,
        labels=labels,
        input=ULTRALYTICS_INPUT,
        decoder=spec,
    )


def _check_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ConfigError(f"{name} must be between 0 and 1, got {value}")
    return value


class Detector:
    """Runs one detection model on frames. Use `Detector.open`."""

    def __init__(
        self,
        model_path: Path,
        card: ModelCard,
        interpreter: Any,
        backend_name: str,
        *,
        on_edgetpu: bool,
        labels: Sequence[str],
    ) -> None:
        self.model_path = model_path
        self.card = card
        self.backend_name = backend_name
        self.on_edgetpu = on_edgetpu
        self._interpreter = interpreter  # tensors already allocated by the backend
        inputs = interpreter.get_input_details()
        height, width, layout = input_layout(model_path, inputs)
        detail = inputs[0]
        scale, zero_point = detail.get("quantization", (0.0, 0))
        self._input_index = int(detail["index"])
        self.input_dtype = np.dtype(detail["dtype"])
        self.preprocessor = Preprocessor(
            card.input, height, width, self.input_dtype, scale or None, int(zero_point), layout
        )
        self.output_infos = [TensorInfo.from_detail(d) for d in interpreter.get_output_details()]
        self.decoder = build_decoder(card.decoder, self.output_infos, len(labels) or None)
        num_classes = self.decoder.num_classes
        if not labels and num_classes:
            labels = [str(i) for i in range(num_classes)]
        self.labels = tuple(labels)
        self.last_timing_ms: dict[str, float] = {}

    # -- construction -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        model_path: str | os.PathLike[str],
        *,
        labels_path: str | os.PathLike[str] | None = None,
        backend: str = "auto",
        num_threads: int | None = None,
        edgetpu: bool | None = None,
        edgetpu_device: str | None = None,
        allow_cpu_fallback: bool = False,
    ) -> Detector:
        """Check, load and bind a model.

        The card ``<model>.yaml`` beside the model is read when present (and its sha256
        verified); otherwise `cardless_card` infers one (YOLO exports: Ultralytics'
        preprocessing, labels from its embedded metadata). ``labels_path`` overrides the
        labels either way. ``edgetpu`` None means: use the Edge TPU when the file is
        named ``*_edgetpu.tflite``. When the Edge TPU cannot load, fall back to the CPU only
        if ``allow_cpu_fallback`` (logged), else raise `BackendError`.
        """
        model_path = Path(model_path)
        data, card = load_model(model_path)
        chosen = get_backend(backend)
        delegates = []
        on_edgetpu = wants_edgetpu(str(model_path), edgetpu)
        if on_edgetpu:
            try:
                delegates.append(load_edgetpu_delegate(chosen, edgetpu_device))
            except BackendError as exc:
                if not allow_cpu_fallback:
                    raise
                log.warning("Edge TPU unavailable, falling back to the CPU: %s", exc)
                on_edgetpu = False
        try:
            interpreter = chosen.interpreter(data, num_threads=num_threads, delegates=delegates)
        except (ValueError, RuntimeError) as exc:
            hint = ""
            if "edgetpu-custom-op" in str(exc):
                hint = "; it was compiled for the Edge TPU: enable edgetpu or use the CPU model"
            raise ModelError(f"the interpreter rejected {model_path}: {exc}{hint}") from None
        if card is None:
            card = cardless_card(model_path, data, interpreter)
        labels: Sequence[str] = card.labels
        if labels_path is not None:
            labels = read_labels(labels_path)
        try:
            return cls(
                model_path, card, interpreter, chosen.name, on_edgetpu=on_edgetpu, labels=labels
            )
        except LabelCountError as exc:
            if labels_path is not None:
                raise InputError(f"label file {labels_path}: {exc}") from None
            raise

    # -- per frame ----------------------------------------------------------------------

    def params(
        self,
        min_score: float | None = None,
        iou_threshold: float | None = None,
        max_detections: int | None = None,
        agnostic: bool = False,
    ) -> DecodeParams:
        """Thresholds for one call; None takes the card's defaults. Validated."""
        d = self.card.defaults
        min_score = _check_fraction("min_score", d.min_score if min_score is None else min_score)
        iou = _check_fraction("iou", d.iou if iou_threshold is None else iou_threshold)
        max_det = d.max_detections if max_detections is None else int(max_detections)
        if max_det < 1:
            raise ConfigError(f"max_detections must be at least 1, got {max_det}")
        return DecodeParams(min_score, iou, max_det, bool(agnostic))

    def _preprocess_and_invoke(self, frame: np.ndarray):
        t0 = time.perf_counter()
        # Write straight into the interpreter's input buffer; the view must be gone
        # before invoke() (the interpreter refuses to run while numpy holds its memory).
        view = self._interpreter.tensor(self._input_index)()
        geometry = self.preprocessor(frame, view[0])
        del view
        t1 = time.perf_counter()
        self._interpreter.invoke()
        t2 = time.perf_counter()
        return geometry, t0, t1, t2

    def raw_outputs(self, frame: np.ndarray) -> tuple[list[np.ndarray], Any]:
        """Run preprocess + invoke; return the raw output arrays (copies) and geometry."""
        geometry, *_ = self._preprocess_and_invoke(frame)
        outs = [self._interpreter.get_tensor(t.index) for t in self.output_infos]
        return outs, geometry

    def last_input(self) -> np.ndarray:
        """A copy of the interpreter's input tensor: what the model saw in the last call."""
        return self._interpreter.get_tensor(self._input_index)

    def invoke_only(self, frame: np.ndarray) -> float:
        """Preprocess + invoke without decoding (for benchmarks); returns invoke ms."""
        _, _, t1, t2 = self._preprocess_and_invoke(frame)
        return (t2 - t1) * 1000.0

    def detect(
        self,
        frame: np.ndarray,
        *,
        min_score: float | None = None,
        iou_threshold: float | None = None,
        max_detections: int | None = None,
        agnostic: bool = False,
    ) -> Detections:
        """Detect objects in one frame (uint8 grey, BGR or BGRA).

        Returns detections with score >= ``min_score`` that survive NMS at
        ``iou_threshold`` (per class unless ``agnostic``), at most ``max_detections``, in
        descending score order, boxes normalized to the frame. Timing per stage in
        ``last_timing_ms``.
        """
        params = self.params(min_score, iou_threshold, max_detections, agnostic)
        geometry, t0, t1, t2 = self._preprocess_and_invoke(frame)
        # get_tensor copies; outputs are small (tens of KB) next to the invoke cost.
        outputs = [self._interpreter.get_tensor(t.index) for t in self.output_infos]
        result = self.decoder.decode(outputs, params, geometry)
        t3 = time.perf_counter()
        self.last_timing_ms = {
            "preprocess": (t1 - t0) * 1000.0,
            "invoke": (t2 - t1) * 1000.0,
            "postprocess": (t3 - t2) * 1000.0,
        }
        return result.with_labels(self.labels)

    def candidates(self, frame: np.ndarray, *, floor: float) -> Detections:
        """Every pre-NMS candidate with ``score >= floor``, for threshold tuning.

        Boxes are mapped to the frame and clipped exactly as `detect` returns them; rows
        are in the order NMS visits them (descending score, ties in the decoder's order).
        So for any ``min_score >= floor``, ``detect(frame, min_score=s, iou_threshold=t)``
        equals ``nms`` at ``t`` (and the card's ``max_detections``) over the rows with
        ``score >= s``. This runs the decoder with an infinite IoU threshold: NMS then
        suppresses nothing (IoU > inf is never true) but still sorts.
        """
        params = DecodeParams(
            min_score=_check_fraction("floor", floor),
            iou_threshold=float("inf"),
            max_detections=2**62,
            agnostic=False,
        )
        outputs, geometry = self.raw_outputs(frame)
        result = self.decoder.decode(outputs, params, geometry)
        return result.with_labels(self.labels)
