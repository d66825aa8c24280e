#!/usr/bin/env python3
"""Tracking benchmark: edgedet's tracker (greedy and Hungarian assignment) vs norfair.

Quality: py-motmetrics IDF1, MOTA, id switches and transfers (a tracker id moving on to
another object) on the generated scenes of tests/events/tracking_sequences.py (crossing
paths, 10 % missed detections, 2-5 frame occlusions, jittered boxes, clutter).
Cost: CPU time per frame of the tracker's update alone (process time), and the resident
memory the tracker adds to a process (VmRSS after importing it and running the scenes,
minus VmRSS before the import), each tracker measured in a fresh subprocess.

Every tracker reports the same thing per frame: the tracks confirmed so far (3 hits) that
are still alive, with their current box. norfair uses its own IoU distance and Kalman
filter, with the same gate (IoU >= 0.2 ⇔ distance <= 0.8), the same coasting limit
(``hit_counter_max`` = ``max_age``) and confirmation (``initialization_delay``).

norfair 2.x pins NumPy < 2, so it cannot live in edgedet's environment; run this script
with a Python that has norfair and motmetrics (e.g. a separate venv)::

    python3 -m venv /tmp/venv-norfair
    /tmp/venv-norfair/bin/pip install norfair motmetrics pyyaml
    PYTHONPATH=. /tmp/venv-norfair/bin/python tools/bench_tracking.py

Without norfair installed it measures edgedet's trackers only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "events")]

TRACKERS = ("edgedet-greedy", "edgedet-hungarian", "norfair")
MAX_AGE = 15
CONFIRM_HITS = 3


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _make(name: str):
    """A fresh ``track_frame(detections) -> (ids, boxes)`` for tracker ``name``."""
    import numpy as np

    if name.startswith("edgedet-"):
        from edgedet.events.tracker import Tracker

        tracker = Tracker(max_age=MAX_AGE, assignment=name.split("-", 1)[1])
        confirmed: set[int] = set()

        def track_frame(detections):
            tracks = tracker.update(detections)
            confirmed.update(tracks.ids[tracks.hits >= CONFIRM_HITS].tolist())
            keep = np.isin(tracks.ids, list(confirmed))
            return tracks.ids[keep], tracks.boxes[keep]

        return track_frame

    import norfair

    tracker = norfair.Tracker(
        distance_function="iou",
        distance_threshold=0.8,
        hit_counter_max=MAX_AGE,
        initialization_delay=CONFIRM_HITS - 1,
    )

    def track_frame(detections):
        dets = []
        for box, score, cls in zip(
            detections.boxes, detections.scores, detections.class_ids, strict=True
        ):
            ymin, xmin, ymax, xmax = (float(v) for v in box)
            points = np.array([[xmin, ymin], [xmax, ymax]])
            dets.append(norfair.Detection(points, scores=np.array([score, score]), label=int(cls)))
        objects = tracker.update(detections=dets)
        ids = [o.id for o in objects]
        boxes = [
            [o.estimate[0, 1], o.estimate[0, 0], o.estimate[1, 1], o.estimate[1, 0]]
            for o in objects
        ]
        return np.asarray(ids, np.int64), np.asarray(boxes, np.float64).reshape(-1, 4)

    return track_frame


def measure(name: str, repeats: int) -> dict:
    """Run ``name`` over the scenes in this process; return quality, CPU and RSS.

    Cost is measured first, on the bare run path: VmRSS before importing the tracker and
    after running every scene through it (no evaluator loaded yet), and the process time
    of the update calls. Quality is measured after, with motmetrics.
    """
    from tracking_sequences import evaluate, standard_scenes

    scenes = standard_scenes()
    rss_before = _rss_kib()
    cpu = 0.0
    frames = 0
    for _ in range(repeats):
        for scene in scenes:
            track = _make(name)
            t0 = time.process_time()
            for frame in scene.frames:
                track(frame.detections)
            cpu += time.process_time() - t0
            frames += len(scene.frames)
    rss_added = (_rss_kib() - rss_before) / 1024.0
    rows = [{"scene": s.name, **evaluate(s, _make(name)).__dict__} for s in scenes]
    return {
        "tracker": name,
        "scenes": rows,
        "cpu_ms_per_frame": 1000.0 * cpu / frames,
        "rss_added_mib": rss_added,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per scene for CPU time")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: one tracker
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeats)))
        return 0

    results = []
    for name in TRACKERS:
        if name == "norfair":
            try:
                import norfair  # noqa: F401
            except ImportError:
                print("norfair not installed: skipped (see the module docstring)")
                continue
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, __file__, "--one", name, "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    import numpy as np

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("scipy", "norfair", "motmetrics"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            pass
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
    )
    scene_names = [r["scene"] for r in results[0]["scenes"]]
    print("\nIDF1 per scene (switches / transfers)")
    print(f"{'scene':<16}" + "".join(f"{r['tracker']:>20}" for r in results))
    for i, scene in enumerate(scene_names):
        cells = []
        for r in results:
            s = r["scenes"][i]
            cells.append(f"{s['idf1']:.3f} ({s['switches']}/{s['transfers']})")
        print(f"{scene:<16}" + "".join(f"{c:>20}" for c in cells))
    print(
        f"{'mean IDF1':<16}"
        + "".join(f"{np.mean([s['idf1'] for s in r['scenes']]):>20.3f}" for r in results)
    )
    print(
        f"{'switches':<16}"
        + "".join(f"{sum(s['switches'] for s in r['scenes']):>20d}" for r in results)
    )
    print(f"{'CPU ms/frame':<16}" + "".join(f"{r['cpu_ms_per_frame']:>20.3f}" for r in results))
    print(f"{'RSS +MiB':<16}" + "".join(f"{r['rss_added_mib']:>20.1f}" for r in results))
    if args.json:
        Path(args.json).write_text(json.dumps({"versions": versions, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
