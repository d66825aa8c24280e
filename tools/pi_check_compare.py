"""Compare the detections of two `edgedet detect --json` or `edgedet run --log` outputs.

Usage: python tools/pi_check_compare.py [--agree] REFERENCE.jsonl OTHER.jsonl

Records are matched by ``image`` (detect, by file name) or ``frame`` (run). By default
their detections (label, class id, score, box) must be equal exactly, in the same order.
With ``--agree`` they must only agree as tests/core/test_tflite_runtime_env.py requires of
two different interpreters: every detection scoring >= 0.65 on one side has one of the
same label on the other at IoU >= 0.8 with a score within 0.15, and the totals differ by
at most 5 %. Prints one summary line (identical records; for the others, detections
matched at IoU >= 0.5, the largest score difference among them and the highest score
left unmatched); exit 0 when the requirement holds, 1 otherwise. Used by
tools/pi_check.sh (aarch64 vs x86-64).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load(path: Path) -> dict[str, list[dict]]:
    """Record key (image name or frame number) → its detections."""
    records = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            key = Path(rec["image"]).name if "image" in rec else f"frame {rec['frame']}"
            records[key] = rec["detections"]
    return records


def iou(a: list[float], b: list[float]) -> float:
    h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = h * w
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def best_match(d: dict, others: list[dict]) -> tuple[float, dict | None]:
    same = [o for o in others if o["label"] == d["label"]]
    if not same:
        return 0.0, None
    o = max(same, key=lambda o: iou(d["box"], o["box"]))
    return iou(d["box"], o["box"]), o


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agree", action="store_true", help="agreement, not identity")
    parser.add_argument("reference", type=Path)
    parser.add_argument("other", type=Path)
    args = parser.parse_args(argv)
    ref, other = load(args.reference), load(args.other)
    problems: list[str] = []
    if ref.keys() != other.keys():
        problems.append(f"records differ: {sorted(ref.keys() ^ other.keys())[:5]}")
    keys = sorted(ref.keys() & other.keys())
    n_ref = sum(len(ref[k]) for k in keys)
    n_other = sum(len(other[k]) for k in keys)
    differ = [k for k in keys if ref[k] != other[k]]
    max_score_diff = max_unmatched = 0.0
    for key in differ:
        for one, two in ((ref[key], other[key]), (other[key], ref[key])):
            for d in one:
                overlap, match = best_match(d, two)
                if match is None or overlap < 0.5:
                    max_unmatched = max(max_unmatched, d["score"])
                else:
                    max_score_diff = max(max_score_diff, abs(d["score"] - match["score"]))
                if args.agree and d["score"] >= 0.65:
                    if match is None or overlap < 0.8 or abs(d["score"] - match["score"]) > 0.15:
                        problems.append(f"{key}: {d} has no counterpart")
    if args.agree:
        if abs(n_ref - n_other) > 0.05 * n_ref:
            problems.append(f"{n_ref} vs {n_other} detections")
    else:
        problems += [f"{k}: detections differ" for k in differ]
    print(
        f"{args.other.name} vs {args.reference.name}: {len(keys)} records, {n_ref} vs "
        f"{n_other} detections, {len(keys) - len(differ)} records identical; in the others "
        f"max |score diff| {max_score_diff:.4f} (matched at IoU >= 0.5), highest unmatched "
        f"score {max_unmatched:.4f}"
    )
    for p in problems[:5]:
        print("  " + p)
    return 0 if not problems and n_ref > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
