"""Best snapshot per event, kept under a budget of files and bytes.

For an event, ``save`` writes two JPEGs: ``<event id>.jpg`` (the whole frame with the
event's box drawn) and ``<event id>-crop.jpg`` (the box, with a margin). Each is written
to a temporary name and renamed, so a reader (the HTTP endpoint) never sees half a file.
A later, better frame of the same event replaces both.

Budget: after each save the oldest snapshots (by modification time) are deleted, pair by
pair, until at most ``max_count`` events keep snapshots and their files total at most
``max_bytes``. The snapshot just written is never the one deleted, so the newest event
always has its picture even when one pair alone exceeds the byte budget.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9A-Za-z.\-_]+$")


class SnapshotStore:
    """Event snapshots in ``directory`` (created when missing)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_count: int = 100,
        max_bytes: int = 50_000_000,
        quality: int = 85,
    ) -> None:
        self.directory = Path(directory)
        self.max_count = int(max_count)
        self.max_bytes = int(max_bytes)
        self.quality = int(quality)

    def path(self, event_id: str, crop: bool = False) -> Path:
        if not _ID.match(event_id):
            raise ValueError(f"not an event id: {event_id!r}")
        return self.directory / (f"{event_id}-crop.jpg" if crop else f"{event_id}.jpg")

    def find(self, event_id: str, crop: bool = False) -> Path | None:
        """The stored snapshot of ``event_id``; None when there is none (or a bad id)."""
        try:
            p = self.path(event_id, crop)
        except ValueError:
            return None
        return p if p.is_file() else None

    def save(
        self, event_id: str, frame: np.ndarray, box: np.ndarray, label: str, score: float
    ) -> Path:
        """Write the annotated frame and crop of ``box`` (normalized ``[ymin, xmin, ymax,
        xmax]``) for ``event_id``; enforce the budget; return the frame snapshot's path."""
        import cv2

        from edgedet.annotate import draw_detections
        from edgedet.detections import Detections

        self.directory.mkdir(parents=True, exist_ok=True)
        dets = Detections(np.asarray([box], np.float32), [score], [0], (label,))
        annotated = draw_detections(frame, dets)
        h, w = annotated.shape[:2]
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        my, mx = 0.1 * (ymax - ymin), 0.1 * (xmax - xmin)  # margin: context around the box
        y0, y1 = int(max(0.0, ymin - my) * h), int(np.ceil(min(1.0, ymax + my) * h))
        x0, x1 = int(max(0.0, xmin - mx) * w), int(np.ceil(min(1.0, xmax + mx) * w))
        src = frame if frame.ndim == 3 and frame.shape[2] == 3 else annotated
        crop = src[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        out = self.path(event_id)
        for path, image in ((out, annotated), (self.path(event_id, crop=True), crop)):
            ok, data = cv2.imencode(".jpg", image, params)
            if not ok:
                raise OSError(f"JPEG encoding failed for {path}")
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data.tobytes())
            os.replace(tmp, path)
        self._enforce(keep=event_id)
        return out

    def events(self) -> list[str]:
        """Event ids with a stored snapshot, newest first."""
        files = [p for p in self.directory.glob("*.jpg") if not p.name.endswith("-crop.jpg")]
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return [p.name[: -len(".jpg")] for p in files]

    def _enforce(self, keep: str) -> None:
        groups: dict[str, list[Path]] = {}
        for p in self.directory.glob("*.jpg"):
            eid = p.name[: -len("-crop.jpg")] if p.name.endswith("-crop.jpg") else p.stem
            groups.setdefault(eid, []).append(p)
        sized = []
        total = 0
        for eid, paths in groups.items():
            try:
                stats = [p.stat() for p in paths]
            except FileNotFoundError:
                continue
            size = sum(s.st_size for s in stats)
            total += size
            sized.append((max(s.st_mtime for s in stats), eid, size, paths))
        sized.sort()  # oldest first
        count = len(sized)
        for _, eid, size, paths in sized:
            if count <= self.max_count and total <= self.max_bytes:
                break
            if eid == keep:
                continue
            for p in paths:
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
            count -= 1
            total -= size
