"""Writing a `TuneResult`: a one-page Markdown report, its plots, and the full grid as JSON.

Files are written into a temporary folder beside ``--out`` and moved into place only when
all of them exist, so a failure leaves no half-written report.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgedet.errors import InputError
from edgedet.tune.grid import OperatingPoint
from edgedet.tune.tuner import TuneResult, example_frames

PLOTS = {
    "pr_curve.png": "Precision-recall as min_score varies",
    "min_score.png": "Precision, recall and F1 against min_score",
    "iou.png": "AP, recall and duplicates against the NMS iou",
    "examples.png": "Frames with the most objects at the recommended setting",
}


def _f(x: float, digits: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def trade_summary(result: TuneResult) -> str:
    """One paragraph: what moving from the card's defaults to the recommendation trades."""
    cur, new = result.current, result.chosen
    frames = len(result.cache)
    if (cur.min_score, cur.iou) == (new.min_score, new.iou):
        return (
            f"The card's defaults (min_score {cur.min_score:.2f}, iou {cur.iou:.2f}) are already "
            f"the recommended setting ({result.rule}): precision {_f(cur.precision)}, recall "
            f"{_f(cur.recall)}, F1 {_f(cur.f1)}."
        )
    found = new.true_positives - cur.true_positives
    alarms = new.false_positives - cur.false_positives
    return (
        f"Moving from the card's defaults (min_score {cur.min_score:.2f}, iou {cur.iou:.2f}) to "
        f"min_score {new.min_score:.2f}, iou {new.iou:.2f} ({result.rule}): recall "
        f"{_f(cur.recall)} → {_f(new.recall)} ({found:+d} of {new.truth} objects found), "
        f"precision {_f(cur.precision)} → {_f(new.precision)} ({alarms:+d} false detections "
        f"over {frames} frames, {alarms / frames:+.2f} per frame), F1 {_f(cur.f1)} → "
        f"{_f(new.f1)}, duplicates per object {_f(cur.duplicates_per_object)} → "
        f"{_f(new.duplicates_per_object)}."
    )


def _point_row(name: str, p: OperatingPoint, ap50: float, ap: float) -> str:
    return (
        f"| {name} | {p.min_score:.2f} | {p.iou:.2f} | {_f(p.precision)} | {_f(p.recall)} | "
        f"{_f(p.f1)} | {_f(p.duplicates_per_object)} | {_f(ap50)} | {_f(ap)} |"
    )


def markdown(result: TuneResult, plots: bool = True) -> str:
    g = result.grid
    cur, new = result.current, result.chosen
    lines = [
        f"# Tuning report: {result.model_name}",
        "",
        f"- data: `{result.options.data}`, {len(result.cache)} frames "
        f"(sha256 {result.fingerprint[:16]}…), {new.truth} true objects",
        f"- ground truth: {result.truth_source}",
        f"- grid: min_score {g.min_scores[0]:.2f}-{g.min_scores[-1]:.2f} step 0.01 x iou "
        f"{g.ious[0]:.2f}-{g.ious[-1]:.2f} step 0.05, from one inference per frame "
        f"(candidates with score >= {result.cache.floor:.2f}); matches at IoU >= 0.5; "
        f"AP by pycocotools",
        "- time: {total:.1f} s: loading the model, reference and frame list {setup:.1f} s, "
        "decoding frames + the model {inference:.1f} s, ground truth {ground_truth:.1f} s, "
        "grid {grid:.1f} s, AP {ap:.1f} s".format_map(
            {
                "total": 0,
                "setup": 0,
                "inference": 0,
                "ground_truth": 0,
                "grid": 0,
                "ap": 0,
                **result.seconds,
            }
        ),
        "",
        f"**Recommended: min_score {new.min_score:.2f}, iou {new.iou:.2f}** ({result.rule}).",
        "",
        trade_summary(result),
        "",
        "| setting | min_score | iou | precision | recall | F1 | duplicates/object | "
        "AP@0.5 | AP@[.5:.95] |",
        "|---|---|---|---|---|---|---|---|---|",
        _point_row("card defaults", cur, *result.ap_current.mean()),
        _point_row("recommended", new, *result.ap_chosen.mean()),
        "",
        "AP is measured on every detection above the floor after NMS at that iou (min_score "
        "does not change it); precision, recall and F1 at the setting itself.",
        "",
    ]
    lines += [
        "## Per label (recommended setting)",
        "",
        "| label | objects | precision | recall | F1 | AP@0.5 | AP@[.5:.95] |",
        "|---|---|---|---|---|---|---|",
    ]
    si = int(np.argmin(np.abs(g.min_scores - new.min_score)))
    ti = int(np.argmin(np.abs(g.ious - new.iou)))
    for c, label in enumerate(result.labels):
        det, tp, _, truth = g.counts(c)
        if truth == 0 and det[si, ti] == 0:
            continue
        m = g.metrics(c)
        lines.append(
            f"| {label} | {truth} | {_f(m['precision'][si, ti])} | {_f(m['recall'][si, ti])} | "
            f"{_f(m['f1'][si, ti])} | {_f(result.ap_chosen.ap50[c])} | "
            f"{_f(result.ap_chosen.ap[c])} |"
        )
    lines.append("")
    lines += [
        "## The score filter (at the recommended iou)",
        "",
        "| min_score | precision | recall | F1 | detections | false |",
        "|---|---|---|---|---|---|",
    ]
    m = g.metrics()
    ti = int(np.argmin(np.abs(g.ious - new.iou)))
    for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        si = int(np.argmin(np.abs(g.min_scores - s)))
        lines.append(
            f"| {g.min_scores[si]:.2f} | {_f(m['precision'][si, ti])} | {_f(m['recall'][si, ti])} "
            f"| {_f(m['f1'][si, ti])} | {int(m['detections'][si, ti])} | "
            f"{int(m['false_positives'][si, ti])} |"
        )
    # NMS matters most where many candidates pass: show a low min_score beside the chosen one.
    scores = sorted({0.3, new.min_score})
    rows = [int(np.argmin(np.abs(g.min_scores - v))) for v in scores]
    head = " | ".join(
        f"recall @{g.min_scores[si]:.2f} | dup/object @{g.min_scores[si]:.2f} | "
        f"detections @{g.min_scores[si]:.2f}"
        for si in rows
    )
    lines += [
        "",
        "## NMS iou",
        "",
        f"| iou | AP@0.5 | AP@[.5:.95] | {head} |",
        "|---" * (3 + 3 * len(rows)) + "|",
    ]
    for ti, t in enumerate(g.ious):
        ap50, ap = result.ap_by_iou[ti].mean()
        cells = " | ".join(
            f"{_f(m['recall'][si, ti])} | {_f(m['duplicates_per_object'][si, ti])} | "
            f"{int(m['detections'][si, ti])}"
            for si in rows
        )
        lines.append(f"| {t:.2f} | {_f(ap50)} | {_f(ap)} | {cells} |")
    lines.append("")
    if plots:
        lines += ["## Plots", ""]
        for name, title in PLOTS.items():
            lines += [f"![{title}]({name})", ""]
        lines += [
            "Examples: boxes with labels are detections at the recommended setting; thin white "
            "boxes are the ground truth.",
            "",
        ]
    lines += ["The whole grid is in `tune.json`.", ""]
    return "\n".join(lines)


def grid_json(result: TuneResult) -> dict:
    g = result.grid

    def arr(a: np.ndarray) -> list:
        return np.where(np.isfinite(a), np.round(a, 4), None).tolist()

    per_label = {}
    for c, label in enumerate(result.labels):
        if g.truth[c] == 0 and not g.detections[c].any():
            continue
        m = g.metrics(c)
        per_label[label] = {
            "objects": int(g.truth[c]),
            **{k: arr(m[k]) for k in ("precision", "recall", "f1", "duplicates_per_object")},
            "ap50_by_iou": [_none(r.ap50[c]) for r in result.ap_by_iou],
            "ap_by_iou": [_none(r.ap[c]) for r in result.ap_by_iou],
        }
    m = g.metrics()
    return {
        "model": result.model_name,
        "data": str(result.options.data),
        "data_sha256": result.fingerprint,
        "frames": list(result.cache.names),
        "ground_truth": result.truth_source,
        "floor": result.cache.floor,
        "min_scores": g.min_scores.tolist(),
        "ious": g.ious.tolist(),
        "current": result.current.to_dict(),
        "recommended": {**result.chosen.to_dict(), "rule": result.rule},
        "all": {
            k: arr(m[k])
            for k in ("precision", "recall", "f1", "duplicates_per_object", "detections")
        },
        "ap50_by_iou": [_none(r.mean()[0]) for r in result.ap_by_iou],
        "ap_by_iou": [_none(r.mean()[1]) for r in result.ap_by_iou],
        "labels": per_label,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
    }


def _none(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 4)


def write_report(result: TuneResult, out: Path, plots: bool = True) -> Path:
    """Write report.md, tune.json and the PNGs into ``out``; return the report's path."""
    from edgedet.tune import plots as P

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".tune-", dir=out))
    except OSError as exc:
        raise InputError(f"cannot write --out {out}: {exc.strerror or exc}") from None
    try:
        if plots:
            g, cur, new = result.grid, result.current, result.chosen
            P.pr_curve(g, cur, new, stage / "pr_curve.png")
            P.versus_min_score(g, cur, new, stage / "min_score.png")
            ap50 = [r.mean()[0] for r in result.ap_by_iou]
            ap = [r.mean()[1] for r in result.ap_by_iou]
            P.versus_iou(g, ap50, ap, cur, new, stage / "iou.png")
            shots = example_frames(result, result.options.examples)
            if shots:
                P.examples([img for _, img in shots], stage / "examples.png")
        (stage / "tune.json").write_text(json.dumps(grid_json(result), separators=(",", ":")))
        (stage / "report.md").write_text(markdown(result, plots))
        for file in sorted(stage.iterdir()):
            os.replace(file, out / file.name)
    except OSError as exc:
        raise InputError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out / "report.md"
