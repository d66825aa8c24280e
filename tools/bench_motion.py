#!/usr/bin/env python3
"""Benchmark the motion detector against one invoke of the bundled model, same run.

Usage (from the repo root):  .venv/bin/python tools/bench_motion.py [--rounds N] [--update FILE]

On real frames of ``vtest.avi`` (768x576; the bundled sample clip when it is missing), in
``--rounds`` interleaved rounds so load from other processes hits both alike:

  motion   ``MotionDetector.detect`` with the default ``MotionConfig`` (resize to 160
           wide, grey, blur, background difference, threshold, count, background update)
  invoke   ``interpreter.invoke()`` alone on the bundled model (``Detector.invoke_only``
           returns its time; preprocessing is excluded, so the ratio is conservative)

Reports the median per-call time of each and their ratio (target: well under 5 %).
``--update FILE`` rewrites the ``## Motion detector`` section of a BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgedet.cli.bench import _machine, replace_section  # noqa: E402
from edgedet.detector import Detector  # noqa: E402
from edgedet.models import bundled_model_path, sample_clip_path  # noqa: E402
from edgedet.motion import MotionConfig, MotionDetector  # noqa: E402
from edgedet.stillclip import VTEST  # noqa: E402

SECTION = "## Motion detector"
TARGET = 0.05


def frames_of(path: Path, n: int) -> list:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < n:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--frames", type=int, default=100, help="frames per round")
    parser.add_argument("--update", metavar="FILE")
    args = parser.parse_args()

    video = VTEST if VTEST.is_file() else sample_clip_path()
    frames = frames_of(video, args.frames)
    detector = Detector.open(bundled_model_path())
    motion = MotionDetector(MotionConfig())
    motion_ms: list[float] = []
    invoke_ms: list[float] = []
    for _ in range(args.rounds):
        for frame in frames:
            t0 = time.perf_counter()
            motion.detect(frame)
            motion_ms.append((time.perf_counter() - t0) * 1000.0)
        for frame in frames:
            invoke_ms.append(detector.invoke_only(frame))
    m, i = statistics.median(motion_ms), statistics.median(invoke_ms)
    h, w = frames[0].shape[:2]
    mc = _machine()
    body = (
        f"frames: {video.name} {w}x{h}, {len(frames)} frames x {args.rounds} interleaved rounds\n"
        "\n"
        "| per frame | median ms |\n|---|---:|\n"
        f"| motion detector (160 px wide copy) | {m:.3f} |\n"
        f"| interpreter.invoke(), bundled model | {i:.3f} |\n"
        "\n"
        f"- ratio motion / invoke: {m / i:.2%} (target well under {TARGET:.0%}: "
        f"{'ok' if m / i < TARGET else 'MISSED'})\n"
        "\n"
        f"Machine: {mc['cpu']}, {mc['cores']} cores, {mc['os']}; Python {mc['python']}, "
        f"numpy {mc['numpy']}, opencv {mc['opencv']}, ai-edge-litert {mc['ai-edge-litert']}; "
        f"load average at the end {mc['load']}.\n"
    )
    sys.stdout.write(body)
    if args.update:
        intro = (
            "Reproduce: `.venv/bin/python tools/bench_motion.py --update BENCHMARKS.md`. "
            "What motion gating costs on every frame, against what it saves on a skipped "
            "one, measured in the same process in interleaved rounds."
        )
        replace_section(args.update, SECTION, intro + "\n\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
