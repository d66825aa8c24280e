"""The report's pictures, PNG via matplotlib's Agg backend (the `tune` extra).

Each function takes finished numbers and writes one file; none computes a metric.
matplotlib is imported inside `_pyplot`, so importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgedet.tune.grid import Grid, OperatingPoint

_DPI = 80
_SIZE = (6.0, 4.0)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        from edgedet.errors import InputError

        raise InputError(
            "plots need matplotlib: pip install 'edgedet[tune]' (or pass --no-plots)"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _col(grid: Grid, iou: float) -> int:
    return int(np.argmin(np.abs(grid.ious - iou)))


def pr_curve(grid: Grid, current: OperatingPoint, chosen: OperatingPoint, path: Path) -> None:
    """Precision against recall as min_score sweeps, at the chosen (and current) IoU."""
    plt = _pyplot()
    m = grid.metrics()
    fig, ax = plt.subplots(figsize=_SIZE)
    for iou, style in ((chosen.iou, "-"), (current.iou, "--")):
        t = _col(grid, iou)
        ax.plot(m["recall"][:, t], m["precision"][:, t], style, label=f"iou {grid.ious[t]:.2f}")
        if iou == current.iou:
            break
    t = _col(grid, chosen.iou)
    for s in (0.1, 0.3, 0.5, 0.7, 0.9):
        si = int(np.argmin(np.abs(grid.min_scores - s)))
        r, p = m["recall"][si, t], m["precision"][si, t]
        if np.isfinite(r) and np.isfinite(p):
            ax.annotate(f"{s:.1f}", (r, p), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax.plot(current.recall, current.precision, "o", ms=9, mfc="none", mew=2,
            label=f"current {current.min_score:.2f}/{current.iou:.2f}")  # fmt: skip
    ax.plot(chosen.recall, chosen.precision, "*", ms=13,
            label=f"recommended {chosen.min_score:.2f}/{chosen.iou:.2f}")  # fmt: skip
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall as min_score varies (labels: min_score)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    _save(fig, path)


def versus_min_score(
    grid: Grid, current: OperatingPoint, chosen: OperatingPoint, path: Path
) -> None:
    """Precision, recall and F1 against min_score at the chosen IoU."""
    plt = _pyplot()
    m = grid.metrics()
    t = _col(grid, chosen.iou)
    fig, ax = plt.subplots(figsize=_SIZE)
    for key in ("precision", "recall", "f1"):
        ax.plot(grid.min_scores, m[key][:, t], label=key)
    ax.axvline(current.min_score, color="grey", ls="--", label=f"current {current.min_score:.2f}")
    ax.axvline(chosen.min_score, color="k", ls=":", label=f"recommended {chosen.min_score:.2f}")
    ax.set_xlabel("min_score")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Score filter at iou {grid.ious[t]:.2f}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    _save(fig, path)


def versus_iou(
    grid: Grid,
    ap50: Sequence[float],
    ap: Sequence[float],
    current: OperatingPoint,
    chosen: OperatingPoint,
    path: Path,
) -> None:
    """AP (pycocotools), recall and duplicates per true object against the NMS IoU.

    Recall and duplicates are drawn at the chosen min_score and at lower ones, where NMS
    has more to do: a low IoU merges neighbours in a crowd (recall falls), a high one lets
    duplicates through.
    """
    plt = _pyplot()
    m = grid.metrics()
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(10.0, 3.4))
    left.plot(grid.ious, ap50, "o-", ms=3, label="AP@0.5")
    left.plot(grid.ious, ap, "s-", ms=3, label="AP@[.5:.95]")
    left.set_title("AP")
    left.legend(fontsize=8)
    for s in sorted({0.2, 0.3, chosen.min_score}):
        si = int(np.argmin(np.abs(grid.min_scores - s)))
        label = f"min_score {grid.min_scores[si]:.2f}"
        middle.plot(grid.ious, m["recall"][si], "o-", ms=3, label=label)
        right.plot(grid.ious, m["duplicates_per_object"][si], "s-", ms=3, label=label)
    middle.set_title("recall")
    right.set_title("duplicates per true object")
    right.legend(fontsize=8)
    for ax in (left, middle, right):
        ax.axvline(current.iou, color="grey", ls="--")
        ax.axvline(chosen.iou, color="k", ls=":")
        ax.set_xlabel("iou (NMS)")
        ax.grid(alpha=0.3)
    _save(fig, path)


def examples(images: Sequence[np.ndarray], path: Path, width: int = 256) -> None:
    """Annotated frames side by side, each scaled to ``width`` pixels; a 64-colour
    palette PNG keeps the file small enough to commit."""
    import cv2
    from PIL import Image

    tiles = []
    for image in images:
        h, w = image.shape[:2]
        size = (width, max(1, round(h * width / w)))
        tiles.append(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    height = max(t.shape[0] for t in tiles)
    row = np.full((height, width * len(tiles) + 4 * (len(tiles) - 1), 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        x = i * (width + 4)
        row[: tile.shape[0], x : x + width] = tile
    rgb = Image.fromarray(cv2.cvtColor(row, cv2.COLOR_BGR2RGB))
    rgb.quantize(64, dither=Image.Dither.NONE).save(path, optimize=True)
