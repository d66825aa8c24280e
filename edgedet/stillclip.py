"""A test clip with long still stretches, built from a busy video at test/bench time.

Motion gating pays off when little moves; the only busy footage at hand
(``vtest.avi``, a street with people walking all the time) has no still moments. This
builds one: the source's median frame (its empty background) held for ``still_seconds``,
then ``passage_seconds`` of the real video, repeated ``passages`` times and ending still,
so ``still_fraction`` = still frames / all frames (the defaults: 48 of 60 s, 80 %). Still
frames carry Gaussian noise of ``noise`` grey levels, as a camera's sensor would (16 noisy
copies, cycled); without it a still stretch would be bit-identical frames, which no
camera produces. Written as MPEG-4 Part 2 (XVID) AVI like vtest.avi itself, a few MB,
in a temporary directory: nothing large is shipped. Gated and ungated runs decode the
same file, so its decoding cost is the same on both sides of a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # Debian's opencv-doc


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, stop)`` of the built clip; ``still`` or a passage from ``source_start``."""

    start: int
    stop: int
    still: bool
    source_start: int = -1


@dataclass(frozen=True)
class StillClip:
    path: Path
    fps: float
    frames: int
    width: int
    height: int
    segments: tuple[Segment, ...]

    @property
    def still_fraction(self) -> float:
        still = sum(s.stop - s.start for s in self.segments if s.still)
        return still / self.frames


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {path}")
    return cap


def median_background(path: Path, samples: int = 31) -> np.ndarray:
    """Per-pixel median of ``samples`` frames spread evenly over the video (BGR uint8)."""
    cap = _open(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = set(np.linspace(0, max(0, total - 1), samples).round().astype(int).tolist())
    frames = []
    for i in range(total):
        if i in wanted:
            ok, image = cap.read()
            if ok:
                frames.append(image)
        elif not cap.grab():
            break
    cap.release()
    if not frames:
        raise ValueError(f"no frames could be read from {path}")
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


def build_still_clip(
    dst: Path,
    src: Path = VTEST,
    *,
    still_seconds: float = 12.0,
    passage_seconds: float = 4.0,
    passages: int = 3,
    noise: float = 2.0,
    seed: int = 0,
    fourcc: str = "XVID",
) -> StillClip:
    """Write the clip to ``dst`` (an ``.avi``) and describe its segments (module docstring).

    Layout: still, passage, still, passage, ..., still (``passages + 1`` still stretches).
    Passages are taken from evenly spaced positions of ``src`` at its own frame rate.
    """
    cap = _open(src)
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    still_n = max(1, round(still_seconds * fps))
    pass_n = max(1, round(passage_seconds * fps))
    if passages * pass_n > total:
        raise ValueError(f"{src} has {total} frames, fewer than {passages} x {pass_n}")
    starts = [round(k * (total - pass_n) / max(1, passages - 1)) for k in range(passages)]
    if passages == 1:
        starts = [(total - pass_n) // 2]
    background = median_background(src)
    height, width = background.shape[:2]
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write {dst} with codec {fourcc}")
    segments: list[Segment] = []
    written = 0
    # A bank of noisy copies, cycled: drawing fresh noise per frame costs more than
    # encoding it, and 16 distinct frames are enough to exercise the threshold.
    base = background.astype(np.float32)
    bank = [
        np.clip(base + rng.normal(0.0, noise, base.shape), 0, 255).astype(np.uint8)
        for _ in range(16 if noise > 0 else 1)
    ]

    def still(n: int) -> None:
        nonlocal written
        for k in range(n):
            writer.write(bank[k % len(bank)])
        segments.append(Segment(written, written + n, True))
        written += n

    cap = _open(src)
    position = 0
    try:
        for start in starts:
            still(still_n)
            while position < start and cap.grab():
                position += 1
            first = written
            for _ in range(pass_n):
                ok, image = cap.read()
                if not ok:
                    break
                position += 1
                writer.write(image)
                written += 1
            segments.append(Segment(first, written, False, start))
        still(still_n)
    finally:
        cap.release()
        writer.release()
    return StillClip(Path(dst), fps, written, width, height, tuple(segments))
