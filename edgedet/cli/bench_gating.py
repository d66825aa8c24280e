"""`edgedet bench --motion`: what motion gating saves and costs, gated vs ungated, one run.

Two clips, each run through the real run loop (``Runner``: capture thread, motion gating,
detector, filters, JSONL log) once with ``motion.enabled: true`` and once with ``false``,
sharing one ``Detector``, in ``--rounds`` rounds that alternate the order:

- ``still``: built from ``vtest.avi`` by ``edgedet.stillclip`` (80 % still: the median
  background with sensor noise, 12 s between 4 s passages of the real video), played in
  real time (``source.realtime``) because ``motion.keepalive`` is in seconds of the
  capture clock;
- ``busy``: ``vtest.avi`` itself (people walk in every frame), played as fast as inference
  takes it (every frame processed, nothing dropped; with motion in every frame keepalive
  never decides, so pacing does not change what is detected).

Per run: process CPU seconds (``resource.getrusage(RUSAGE_SELF)``, user + system, every
thread: capture decoding, motion, interpreter threads, publishers) per minute of video,
invokes per minute of video, frames skipped by gating, frames dropped by the slot. Per
clip: the CPU ratio ungated / gated; events: every "new" event of the ungated run must
have a gated one of the same label and zones starting within 0.5 s of video time (start
times mapped to video time through the frame records); and per-second person counts:
for each second of video the largest person count of its records, a second without a
record keeping the last count (what a consumer of the records sees). A second is *lost*
when the ungated run saw a person and the gated run saw none.

Targets: still clip >= 3x less CPU gated; busy clip <= 3 % extra CPU gated; no event and
no second lost.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_STILL_RATIO = 3.0
TARGET_BUSY_EXTRA = 0.03
SECTION = "## Motion gating"


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _per_second_persons(records: list[dict], fps: float, seconds: int) -> list[int]:
    """Largest person count per second of video; seconds without a record keep the last."""
    best: dict[int, int] = {}
    for rec in records:
        second = int(rec["frame"] // fps)
        n = sum(1 for d in rec["detections"] if d["label"] == "person")
        best[second] = max(best.get(second, 0), n)
    out, last = [], 0
    for s in range(seconds):
        last = best.get(s, last)
        out.append(last)
    return out


def _video_time(ts: float, records: list[dict], fps: float) -> float:
    """Seconds into the video of the processed frame captured at ``ts`` (the nearest)."""
    import bisect

    times = [r["ts"] for r in records]
    i = bisect.bisect_left(times, ts)
    near = min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - ts))
    return records[near]["frame"] / fps


def _match_events(ungated: list[dict], gated: list[dict], tolerance: float = 0.5) -> int:
    """Events of the ungated run with no gated event of the same label and zones starting
    within ``tolerance`` seconds of video time (each gated event matches once)."""
    free = list(gated)
    lost = 0
    for e in ungated:
        hit = next(
            (
                g
                for g in free
                if g["label"] == e["label"]
                and g["zones"] == e["zones"]
                and abs(g["t"] - e["t"]) <= tolerance
            ),
            None,
        )
        if hit is None:
            lost += 1
        else:
            free.remove(hit)
    return lost


def _one_run(cfg: Any, detector: Any, log: Path, events_log: Path) -> dict[str, Any]:
    from edgedet.metrics import Metrics
    from edgedet.service.runner import Runner

    metrics = Metrics()
    log.unlink(missing_ok=True)
    events_log.unlink(missing_ok=True)
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    runner = Runner(cfg, detector=detector, metrics=metrics, install_signals=False)
    summary = runner.run()
    cpu, wall = _cpu_seconds() - cpu0, time.monotonic() - wall0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    events = []
    if events_log.exists():
        events = [json.loads(line) for line in events_log.read_text().splitlines()]
    skipped = int(metrics.get("frames_skipped_total"))
    return {
        "cpu_s": cpu,
        "capture_cpu_s": runner.capture.cpu_seconds,
        "wall_s": wall,
        "records": len(records),
        "skipped": skipped,
        "dropped": int(metrics.get("frames_dropped_total")) - skipped,
        "reasons": {
            r: int(metrics.get("motion_admitted_total", reason=r))
            for r in ("first", "motion", "present", "keepalive")
        },
        "summary_frames": summary.frames,
        "_records": records,
        "_events": [e for e in events if e.get("type") == "new"],
    }


def _clip_result(name: str, path: Path, realtime: bool, runs: dict[str, list[dict]]) -> dict:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    minutes = frames / fps / 60.0
    seconds = math.ceil(frames / fps)
    out: dict[str, Any] = {
        "clip": name,
        "path": str(path),
        "frames": frames,
        "fps": fps,
        "video_s": round(frames / fps, 1),
        "realtime": realtime,
    }
    for mode, rs in runs.items():
        cpu = sum(r["cpu_s"] for r in rs) / len(rs)
        capture = sum(r["capture_cpu_s"] for r in rs) / len(rs)
        out[mode] = {
            "cpu_s_per_video_min": round(cpu / minutes, 2),
            "capture_cpu_s_per_video_min": round(capture / minutes, 2),
            "cpu_without_capture_per_video_min": round((cpu - capture) / minutes, 2),
            "invokes_per_video_min": round(sum(r["records"] for r in rs) / len(rs) / minutes, 1),
            "skipped": round(sum(r["skipped"] for r in rs) / len(rs), 1),
            "dropped": round(sum(r["dropped"] for r in rs) / len(rs), 1),
            "reasons": rs[-1]["reasons"],
            "cpu_s_runs": [round(r["cpu_s"], 2) for r in rs],
        }
    g, u = out["gated"], out["ungated"]
    out["cpu_ratio_ungated_over_gated"] = round(
        u["cpu_s_per_video_min"] / g["cpu_s_per_video_min"], 3
    )
    out["cpu_ratio_without_capture"] = round(
        u["cpu_without_capture_per_video_min"] / g["cpu_without_capture_per_video_min"], 3
    )
    # Person counts: every round compared (gated round k against ungated round k).
    lost = lower = equal = total = 0
    for rg, ru in zip(runs["gated"], runs["ungated"], strict=True):
        pg = _per_second_persons(rg["_records"], fps, seconds)
        pu = _per_second_persons(ru["_records"], fps, seconds)
        for a, b in zip(pg, pu, strict=True):
            total += 1
            equal += a == b
            lower += a < b
            lost += b > 0 and a == 0
    out["persons_per_second"] = {
        "seconds": total,
        "equal": equal,
        "gated_lower": lower,
        "lost": lost,
    }
    # Events: (label, zones, start within 0.5 s of video time), gated against ungated.
    n_ungated = n_gated = events_lost = 0

    def new_events(run: dict) -> list[dict]:
        return [
            {
                "label": e["label"],
                "zones": e.get("zones", []),
                "t": _video_time(e["start"], run["_records"], fps),
            }
            for e in run["_events"]
        ]

    for rg, ru in zip(runs["gated"], runs["ungated"], strict=True):
        eg, eu = new_events(rg), new_events(ru)
        n_gated += len(eg)
        n_ungated += len(eu)
        events_lost += _match_events(eu, eg)
    out["events"] = {"ungated": n_ungated, "gated": n_gated, "lost": events_lost}
    return out


def run_gating_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Build the still clip, run both clips gated and ungated; return the result dict."""
    from edgedet.cli.bench import _machine
    from edgedet.cli.options import overrides_from_args
    from edgedet.service.config import Override, load_config
    from edgedet.service.runner import open_detector
    from edgedet.stillclip import VTEST, build_still_clip

    busy = Path(args.video) if args.video else VTEST
    if not busy.is_file():
        from edgedet.errors import InputError

        raise InputError(
            f"bench --motion: {busy} not found; install it (apt-get install opencv-doc) "
            "or pass --video PATH"
        )
    tmp = tempfile.TemporaryDirectory(prefix="edgedet-bench-motion-")
    try:
        root = Path(tmp.name)
        still = build_still_clip(
            root / "still.avi",
            busy,
            still_seconds=args.still_seconds,
            passage_seconds=args.still_seconds / 3.0,  # 3:1 → 80 % still with 3 passages
            passages=3,
        )
        log = root / "bench.jsonl"
        base = [
            Override("http.enabled", "false", "bench"),
            Override("service.summary", "false", "bench"),
            Override("log.path", str(log), "bench"),
            Override("log.frames", "all", "bench"),  # every processed frame: person counts
            Override("events.log_path", str(root / "events.jsonl"), "bench"),
            Override("events.state_file", str(root / "events.seq"), "bench"),
        ]
        cfg = load_config(args.config, base + overrides_from_args(args))
        detector = open_detector(cfg)
        clips = [("still", still.path, True), ("busy", busy, False)]
        results = []
        for name, path, realtime in clips:
            runs: dict[str, list[dict]] = {"gated": [], "ungated": []}
            for k in range(args.rounds):
                order = ("ungated", "gated") if k % 2 == 0 else ("gated", "ungated")
                for mode in order:
                    c = dataclasses.replace(
                        cfg,
                        source=dataclasses.replace(
                            cfg.source, uri=str(path), loop=False, realtime=realtime
                        ),
                        motion=dataclasses.replace(cfg.motion, enabled=mode == "gated"),
                        service=dataclasses.replace(cfg.service, max_frames=None),
                    )
                    runs[mode].append(_one_run(c, detector, log, root / "events.jsonl"))
            results.append(_clip_result(name, path, realtime, runs))
    finally:
        tmp.cleanup()
    by = {r["clip"]: r for r in results}
    for r in results:
        r["path"] = r["path"] if r["clip"] == "busy" else "(built from vtest.avi, temporary)"
    return {
        "model": cfg.model.path,
        "threads": cfg.model.threads,
        "backend": getattr(detector, "backend_name", "?"),
        "rounds": args.rounds,
        "motion": dataclasses.asdict(cfg.motion),
        "still_fraction": round(still.still_fraction, 3),
        "clips": results,
        "targets": {
            "still_ratio_ok": by["still"]["cpu_ratio_ungated_over_gated"] >= TARGET_STILL_RATIO,
            "still_ratio_without_capture_ok": by["still"]["cpu_ratio_without_capture"]
            >= TARGET_STILL_RATIO,
            "busy_extra_ok": 1 / by["busy"]["cpu_ratio_ungated_over_gated"] - 1
            <= TARGET_BUSY_EXTRA,
            "nothing_lost": all(
                r["persons_per_second"]["lost"] == 0 and r["events"]["lost"] == 0 for r in results
            ),
        },
        "machine": _machine(),
    }


def render(r: dict[str, Any]) -> str:
    """The report (also the body of the BENCHMARKS.md section)."""
    from edgedet.cli.bench import _short

    def ok(flag: bool) -> str:
        return "ok" if flag else "MISSED"

    m = r["machine"]
    mo = r["motion"]
    lines = [
        f"model: {_short(r['model'])} (backend {r['backend']}, threads "
        f"{r['threads'] or 'default'}); motion: width {mo['width']}, threshold "
        f"{mo['threshold']}, min_area {mo['min_area']}, alpha {mo['alpha']}, "
        f"stationary_interval {mo['stationary_interval']}, keepalive {mo['keepalive']} s; "
        f"{r['rounds']} round(s) per mode, order alternating",
        "",
        "| clip | mode | CPU s / video min | of which capture | invokes / video min | skipped "
        "| dropped | admitted: first / motion / present / keepalive |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in r["clips"]:
        for mode in ("ungated", "gated"):
            v = c[mode]
            why = v["reasons"]
            reasons = (
                f"{why['first']} / {why['motion']} / {why['present']} / {why['keepalive']}"
                if mode == "gated"
                else "-"
            )
            lines.append(
                f"| {c['clip']} | {mode} | {v['cpu_s_per_video_min']} | "
                f"{v['capture_cpu_s_per_video_min']} | {v['invokes_per_video_min']} | "
                f"{v['skipped']:g} | {v['dropped']:g} | {reasons} |"
            )
    lines.append("")
    for c in r["clips"]:
        p = c["persons_per_second"]
        ratio = c["cpu_ratio_ungated_over_gated"]
        pace = "real time" if c["realtime"] else "as fast as inference takes it"
        lines.append(
            f"- {c['clip']}: {c['frames']} frames, {c['video_s']} s at {c['fps']:g} FPS, "
            f"played {pace}; CPU ungated / gated = {ratio}x "
            f"({c['cpu_ratio_without_capture']}x without the capture thread); "
            "per-second person counts: "
            f"{p['equal']} of {p['seconds']} s equal, {p['gated_lower']} lower when gated, "
            f"{p['lost']} lost; events (label, zones, start within 0.5 s): "
            f"{c['events']['ungated']} ungated, {c['events']['gated']} gated, "
            f"{c['events']['lost']} lost"
        )
    t = r["targets"]
    still = next(c for c in r["clips"] if c["clip"] == "still")
    busy = next(c for c in r["clips"] if c["clip"] == "busy")
    extra = 1 / busy["cpu_ratio_ungated_over_gated"] - 1
    lines += [
        f"- still clip ({r['still_fraction']:.0%} still): "
        f"{still['cpu_ratio_ungated_over_gated']}x less process CPU gated "
        f"(target >= {TARGET_STILL_RATIO:g}x: {ok(t['still_ratio_ok'])}); "
        f"{still['cpu_ratio_without_capture']}x without the capture thread's decoding "
        f"({ok(t['still_ratio_without_capture_ok'])})",
        f"- busy clip: gating costs {extra:+.1%} CPU (target <= +{TARGET_BUSY_EXTRA:.0%}: "
        f"{ok(t['busy_extra_ok'])})",
        f"- no event and no second with people lost: {ok(t['nothing_lost'])}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}; Python {m['python']}, "
        f"numpy {m['numpy']}, opencv {m['opencv']}, ai-edge-litert {m['ai-edge-litert']}, "
        f"edgedet {m['edgedet']}; load average at the end {m['load']}.",
    ]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    import sys

    from edgedet.cli.bench import replace_section

    result = run_gating_bench(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        sys.stdout.write(render(result))
    if args.update:
        intro = (
            "Reproduce: `.venv/bin/edgedet bench --motion --update BENCHMARKS.md` "
            "(edgedet/cli/bench_gating.py; needs vtest.avi from Debian's opencv-doc). "
            "The run loop gated vs ungated on the same detector in the same process; "
            "CPU is the whole process (capture decoding included, which gating cannot "
            'save on a file; on a Pi camera the ISP does that work). "of which capture" is '
            "the capture thread alone (FFmpeg's own decoding threads count in the total "
            "only). The still clip's floor is its passages, 20 % of the frames, every one "
            "detected; per-frame costs that gating cannot skip (decoding, the motion check, "
            "the loop) bound the ratio, so it grows with the invoke's share of a frame's "
            "cost. Runs of the same build vary by a few percent with the machine's load."
        )
        replace_section(args.update, SECTION, intro + "\n\n" + render(result))
    return 0
