"""Compare the detections of two `edgedet detect --json` or `edgedet run --log` outputs.

Usage: python tools/pi_check_compare.py REFERENCE.jsonl OTHER.jsonl

Records are matched by ``image`` (detect) or ``frame`` (run); their detections (label,
class id, score, box) must be equal exactly, in the same order. Prints one summary line;
exit 0 when identical, 1 otherwise (with the first differences and the largest score and
box coordinate differences). Used by tools/pi_check.sh (aarch64 vs x86-64).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(path: Path) -> dict[str, list[dict]]:
    """Record key (image name or frame number) → its detections."""
    records = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        key = Path(rec["image"]).name if "image" in rec else f"frame {rec['frame']}"
        records[key] = rec["detections"]
    return records


def main(argv: list[str]) -> int:
    ref_path, other_path = Path(argv[0]), Path(argv[1])
    ref, other = load(ref_path), load(other_path)
    problems: list[str] = []
    if ref.keys() != other.keys():
        problems.append(f"records differ: {sorted(ref.keys() ^ other.keys())[:5]}")
    n_det = n_diff = 0
    max_score = max_box = 0.0
    for key in ref.keys() & other.keys():
        a, b = ref[key], other[key]
        n_det += len(a)
        if a == b:
            continue
        n_diff += 1
        if len(a) != len(b) or [d["label"] for d in a] != [d["label"] for d in b]:
            problems.append(f"{key}: {len(a)} vs {len(b)} detections")
            continue
        for da, db in zip(a, b, strict=True):
            max_score = max(max_score, abs(da["score"] - db["score"]))
            max_box = max(max_box, *(abs(x - y) for x, y in zip(da["box"], db["box"], strict=True)))
        problems.append(f"{key}: scores or boxes differ")
    summary = (
        f"{other_path.name} vs {ref_path.name}: {len(ref)} records, {n_det} detections, "
        f"{n_diff} records differ (max |score diff| {max_score:g}, max |box diff| {max_box:g})"
    )
    print(summary)
    for p in problems[:10]:
        print("  " + p)
    return 0 if not problems and n_det > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
