#!/usr/bin/env python3
"""Tracks and events on a video: the bundled model, every frame, default events config.

Runs the detector on each frame of each video (no frame dropped), feeds the detections
to the events stage as `edgedet run` does (timestamps from the file's frame rate), and
reports per video: frames, detections, tracks started, events (new / update / end), and
the CPU time per frame of the events stage (tracking + event machine) next to the
detector's own, measured in the same run. With --records it also sizes what the per-frame
log would have written against the events log (JSON bytes).

    PYTHONPATH=. .venv/bin/python tools/events_on_video.py \
        models/samples/vtest_clip.mp4 /usr/share/doc/opencv-doc/examples/data/vtest.avi
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(video: str, detector, args) -> dict:
    import cv2

    from edgedet.events.config import EventsConfig, TrackingConfig
    from edgedet.events.pipeline import EventsStage
    from edgedet.events.seqstate import SeqCounter

    events_cfg = EventsConfig(snapshots=False, threshold=args.threshold)
    stage = EventsStage(
        events_cfg,
        TrackingConfig(assignment=args.assignment),
        {},
        detector.labels,
        "bench",
        seq=SeqCounter(None),
    )
    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    kinds: Counter[str] = Counter()
    frames = detections = 0
    detect_s = events_s = 0.0
    frame_bytes = event_bytes = 0
    records_with_detections = 0
    stage.start()
    while True:
        ok, image = cap.read()
        if not ok:
            break
        t0 = time.process_time()
        dets = detector.detect(image)
        t1 = time.process_time()
        batch = stage.process(dets, frames / fps)
        t2 = time.process_time()
        detect_s += t1 - t0
        events_s += t2 - t1
        detections += len(dets)
        for record in batch.events:
            kinds[record["type"]] += 1
            event_bytes += len(json.dumps(record, separators=(",", ":"))) + 1
        if args.records:
            # The per-frame record `edgedet run` writes (same keys as the runner).
            rec = {
                "ts": round(time.time(), 3),
                "frame": frames,
                "source": video,
                "width": image.shape[1],
                "height": image.shape[0],
                "dropped": 0,
                "timing_ms": {"preprocess": 1.234, "invoke": 12.345, "postprocess": 0.321},
                "detections": dets.to_records(),
            }
            n = len(json.dumps(rec, separators=(",", ":"))) + 1
            frame_bytes += n
            records_with_detections += bool(len(dets))
        frames += 1
    for record in stage.finish().events:
        kinds[record["type"]] += 1
        event_bytes += len(json.dumps(record, separators=(",", ":"))) + 1
    cap.release()
    return {
        "video": Path(video).name,
        "frames": frames,
        "seconds": frames / fps,
        "detections": detections,
        "tracks": stage.tracks_started,
        "events": dict(kinds),
        "detect_ms_per_frame": 1000 * detect_s / max(frames, 1),
        "events_ms_per_frame": 1000 * events_s / max(frames, 1),
        "frame_log_bytes": frame_bytes,
        "event_log_bytes": event_bytes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--assignment", default="greedy", choices=("greedy", "hungarian"))
    parser.add_argument("--threshold", type=float, default=0.6, help="events.threshold")
    parser.add_argument("--records", action="store_true", help="size the per-frame log too")
    args = parser.parse_args()

    import numpy as np

    from edgedet.detector import Detector
    from edgedet.models import default_model_path

    detector = Detector.open(default_model_path(), num_threads=1)
    print(
        f"machine: {platform.machine()}; python {platform.python_version()}, "
        f"numpy {np.__version__}; model {detector.model_path.name} ({detector.backend_name}, "
        "1 thread); events defaults, tracking " + args.assignment
    )
    for video in args.videos:
        r = run(video, detector, args)
        ev = r["events"]
        print(
            f"{r['video']}: {r['frames']} frames ({r['seconds']:.0f} s), "
            f"{r['detections']} detections, {r['tracks']} tracks, {ev.get('new', 0)} events "
            f"(new {ev.get('new', 0)}, update {ev.get('update', 0)}, end {ev.get('end', 0)}); "
            f"CPU ms/frame: detector {r['detect_ms_per_frame']:.2f}, "
            f"events stage {r['events_ms_per_frame']:.3f}"
        )
        if args.records:
            print(
                f"  JSON bytes: per-frame records {r['frame_log_bytes']}, "
                f"event records {r['event_log_bytes']} "
                f"({100 * r['event_log_bytes'] / max(r['frame_log_bytes'], 1):.1f} %)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
