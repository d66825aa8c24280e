"""Print how many of Ultralytics' detections edgedet matches on the Ultralytics fixtures.

Per fixture and conf/iou setting: exact input, mapped to the frame, end to end with
``cv2.INTER_LINEAR`` (Ultralytics' resize) forced, and end to end with
``cv2.INTER_LINEAR_EXACT`` (issue 10's cross-CPU-deterministic resize) forced at several
score tolerances; ``--ultralytics-order`` adds each with Ultralytics' order of NMS and
clipping (NMS first). Matching rules and fixtures are those of
tests/decoders/test_ultralytics_exports.py::

    PYTHONPATH=$PWD python tools/ultralytics_match_rates.py [--ultralytics-order]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "decoders"))

import test_ultralytics_exports as t  # noqa: E402

import edgedet.preprocess  # noqa: E402
from edgedet.decoders import yolo  # noqa: E402


@contextlib.contextmanager
def patched(interpolation: int | None, ultralytics_order: bool) -> Iterator[None]:
    original_cv2, original_finish = edgedet.preprocess.cv2, yolo.finish
    if interpolation is not None:
        fake = ModuleType("cv2")
        fake.__dict__.update(cv2.__dict__)
        fake.INTER_LINEAR = fake.INTER_LINEAR_EXACT = interpolation
        edgedet.preprocess.cv2 = fake
    if ultralytics_order:
        yolo.finish = t._nms_before_clipping
    try:
        yield
    finally:
        edgedet.preprocess.cv2, yolo.finish = original_cv2, original_finish


E2E_TOLERANCES = (1e-4, 0.02, 0.05, 0.1, 1.0)


def main() -> None:
    columns = [
        ("exact input", "exact", None),
        ("mapped to frame", "mapped", None),
        ("e2e LINEAR", "end_to_end", cv2.INTER_LINEAR),
    ]
    orders = (False, True) if "--ultralytics-order" in sys.argv else (False,)
    header = ["fixture", "conf/iou"]
    header += [f"{name}{' (U. order)' if o else ''}" for name, _, _ in columns for o in orders]
    header += [f"e2e LINEAR_EXACT, score ±{tol:g}" for tol in E2E_TOLERANCES]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for model in t.MODELS:
        for conf, iou in t.SETTINGS:
            cells = []
            for _, kind, interpolation in columns:
                for order in orders:
                    with patched(interpolation, order):
                        m, n = t._rate(model, conf, iou, kind)
                    cells.append(f"{m}/{n} {100 * m / n:.1f}")
            with patched(cv2.INTER_LINEAR_EXACT, False):
                for tol in E2E_TOLERANCES:
                    m, n = t._rate(model, conf, iou, "end_to_end", tol)
                    cells.append(f"{m}/{n} {100 * m / n:.1f}")
            print(f"| {model} | {conf}/{iou} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
