"""What a converted flatbuffer holds: op counts, I/O tensors, and any float left in it.

A full-integer model has no float32 tensor an op reads or writes: weights int8, biases
int32, activations int8, I/O uint8/int8. The report lists every op that still touches a
float tensor, by name, so the user knows exactly what will fall back to float (and what
the Edge TPU compiler will refuse to map).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

_FLOAT_KINDS = "f"
POSTPROCESS_OP = "TFLite_Detection_PostProcess"


@dataclass(frozen=True)
class TensorSummary:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int

    def to_card(self) -> dict:
        out: dict = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.scale is not None:
            out["scale"] = float(np.float32(self.scale))
            out["zero_point"] = self.zero_point
        return out


@dataclass(frozen=True)
class ModelSummary:
    size_bytes: int
    op_counts: dict[str, int]
    inputs: list[TensorSummary]
    outputs: list[TensorSummary]
    float_ops: list[str] = field(default_factory=list)  # "OP_NAME (tensor, ...)"
    float_tensors: list[str] = field(default_factory=list)

    @property
    def full_integer(self) -> bool:
        """No op computes in float, apart from the ``TFLite_Detection_PostProcess`` custom
        op and the casts into it: that op always runs on the CPU in float (Coral's own SSD
        models are built that way)."""
        return not self.float_compute_ops

    @property
    def float_compute_ops(self) -> list[str]:
        casts = {"QUANTIZE", "DEQUANTIZE", POSTPROCESS_OP}
        return sorted({op.split(" ")[0] for op in self.float_ops} - casts)

    @property
    def has_postprocess_op(self) -> bool:
        return POSTPROCESS_OP in self.op_counts

    @property
    def float_op_names(self) -> list[str]:
        """Distinct ops computing in float; the (de)quantize casts around them are left out."""
        return self.float_compute_ops or sorted({op.split(" ")[0] for op in self.float_ops})

    @property
    def num_ops(self) -> int:
        return sum(self.op_counts.values())


def summarize(model: bytes) -> ModelSummary:
    """Inspect a TFLite flatbuffer with the runtime interpreter (no TensorFlow needed)."""
    from edgedet.backends import get_backend

    module = get_backend("auto").module
    kwargs = {}
    resolver = getattr(module, "OpResolverType", None)
    if resolver is not None:
        # Without the default delegates, so ops are listed as written, not as XNNPACK
        # partitions; nothing is allocated or invoked.
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = module.Interpreter(model_content=model, **kwargs)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # the public API has no op listing
    counts = Counter(op["op_name"] for op in ops)
    float_ops: list[str] = []
    float_tensors: set[str] = set()
    for op in ops:
        touched = [int(i) for i in (*op["inputs"], *op["outputs"]) if int(i) >= 0]
        floats = [tensors[i]["name"] for i in touched if _is_float(tensors[i]["dtype"])]
        if floats:
            float_ops.append(f"{op['op_name']} ({', '.join(floats[:3])})")
            float_tensors.update(floats)
    return ModelSummary(
        size_bytes=len(model),
        op_counts=dict(sorted(counts.items())),
        inputs=[_tensor(d) for d in interpreter.get_input_details()],
        outputs=[_tensor(d) for d in interpreter.get_output_details()],
        float_ops=float_ops,
        float_tensors=sorted(float_tensors),
    )


def _is_float(dtype: object) -> bool:
    return np.dtype(dtype).kind in _FLOAT_KINDS


def _tensor(detail: dict) -> TensorSummary:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    dtype = np.dtype(detail["dtype"])
    quantized = dtype.kind in "iu" and bool(scale)
    return TensorSummary(
        name=str(detail["name"]),
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=dtype.name,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else 0,
    )
