"""Calibration and hold-out frames: read real images or video, preprocess like the runtime.

Frames are picked evenly over the whole source (or over ``frame_range`` of a video) and
split by interleaving: most picks calibrate the quantizer, the others are held back for
the fidelity report, so the held-back frames were never seen by the calibrator but cover the
same scenes. Calibration frames go through the runtime's own `Preprocessor` (with a
float32 input), so the quantizer sees exactly what the float model would see on the device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedet.errors import InputError
from edgedet.modelcard import InputSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass(frozen=True)
class FrameSet:
    """Frames picked from a calibration source, split into calibration and hold-out."""

    source: str
    calibration: list[np.ndarray]  # BGR uint8 frames
    holdout: list[np.ndarray]
    calibration_ids: list[int]  # frame numbers (video) or sorted-file positions (folder)
    holdout_ids: list[int]
    total: int  # frames or images available in the chosen range
    frame_range: tuple[int, int | None] | None = None

    def summary(self) -> dict:
        """The card's ``quantization.calibration`` block."""
        return {
            "source": Path(self.source).name,
            "frames": len(self.calibration),
            "holdout_frames": len(self.holdout),
            "available": self.total,
            "range": list(self.frame_range) if self.frame_range else None,
            "first": min(self.calibration_ids) if self.calibration_ids else None,
            "last": max(self.calibration_ids) if self.calibration_ids else None,
        }


def spread(count: int, start: int, stop: int) -> list[int]:
    """``count`` distinct indices spread evenly over ``[start, stop)`` (fewer if too short)."""
    n = stop - start
    if count >= n:
        return list(range(start, stop))
    # Centre of each of `count` equal slices, so the first and last frames are not favoured.
    picks = start + ((np.arange(count) + 0.5) * n / count).astype(np.int64)
    return sorted(set(int(i) for i in picks))


def load_frames(
    path: str | Path,
    calibration_count: int,
    holdout_count: int,
    *,
    frame_range: tuple[int, int | None] | None = None,
    min_calibration: int = 1,
) -> FrameSet:
    """Pick ``calibration_count + holdout_count`` frames spread over a video or image folder.

    Raises `InputError` when the path is missing, nothing in it decodes, or fewer than
    ``min_calibration`` calibration frames result.
    """
    src = Path(path)
    if not src.exists():
        raise InputError(f"calibration source {src} does not exist; pass a video or image folder")
    wanted = calibration_count + holdout_count
    if calibration_count < 1 or holdout_count < 0:
        raise InputError("ask for at least one calibration frame and zero or more held back")
    if src.is_dir():
        frames, ids, total = _read_folder(src, wanted, frame_range)
    else:
        frames, ids, total = _read_video(src, wanted, frame_range)
    calib, hold = split_holdout(list(zip(ids, frames, strict=True)), holdout_count / wanted)
    if len(calib) < min_calibration:
        raise InputError(
            f"calibration source {src} gave {len(calib)} usable frame(s), need at least "
            f"{min_calibration}; add images or lower --calib-count"
        )
    return FrameSet(
        source=str(src),
        calibration=[f for _, f in calib],
        holdout=[f for _, f in hold],
        calibration_ids=[i for i, _ in calib],
        holdout_ids=[i for i, _ in hold],
        total=total,
        frame_range=frame_range,
    )


def split_holdout(picks: list, holdout_share: float) -> tuple[list, list]:
    """Split picks (in source order) into calibration and hold-out, interleaved.

    The hold-out positions are the centres of equal slices, so with a share of one half
    every second pick is held back and both sets cover the whole source.
    """
    n_hold = round(len(picks) * holdout_share)
    hold_positions = set(spread(n_hold, 0, len(picks))) if n_hold else set()
    calib = [p for k, p in enumerate(picks) if k not in hold_positions]
    hold = [p for k, p in enumerate(picks) if k in hold_positions]
    return calib, hold


def _read_folder(
    folder: Path, wanted: int, frame_range: tuple[int, int | None] | None
) -> tuple[list[np.ndarray], list[int], int]:
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    start, stop = _resolve_range(frame_range, len(files))
    files = files[start:stop]
    if not files:
        raise InputError(
            f"calibration folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
            "add real frames from the camera the model will see"
        )
    frames: list[np.ndarray] = []
    ids: list[int] = []
    unreadable: list[str] = []
    for k in spread(wanted, 0, len(files)):
        image = cv2.imread(str(files[k]), cv2.IMREAD_COLOR)
        if image is None:
            unreadable.append(files[k].name)
            continue
        frames.append(image)
        ids.append(start + k)
    if not frames:
        raise InputError(
            f"no image in calibration folder {folder} could be decoded "
            f"(e.g. {unreadable[0]}); use JPEG or PNG files"
        )
    return frames, ids, len(files)


def _read_video(
    video: Path, wanted: int, frame_range: tuple[int, int | None] | None
) -> tuple[list[np.ndarray], list[int], int]:
    import cv2

    if video.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(
            f"calibration source {video} is a single image; pass a folder of images or a video"
        )
    start, stop = _resolve_range(frame_range, None)
    # Two passes: count, then decode only the picks. Container frame counts are unreliable
    # and holding a whole video in memory is not an option on small machines.
    available = _count_frames(video, stop) - start
    if available <= 0:
        raise InputError(
            f"calibration video {video} yielded no frames in the chosen range; "
            "check the file and --calib-range"
        )
    picks = spread(wanted, start, start + available)
    wanted_set = set(picks)
    frames: list[np.ndarray] = []
    ids: list[int] = []
    cap = cv2.VideoCapture(str(video))
    try:
        index = 0
        while index <= picks[-1] and cap.grab():
            if index in wanted_set:
                ok, frame = cap.retrieve()
                if ok:
                    frames.append(frame)
                    ids.append(index)
            index += 1
    finally:
        cap.release()
    return frames, ids, available


def _count_frames(video: Path, stop: int | None) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            raise InputError(
                f"cannot open calibration video {video}; pass a video OpenCV can read "
                "(mp4, avi) or a folder of images"
            )
        count = 0
        while (stop is None or count < stop) and cap.grab():
            count += 1
    finally:
        cap.release()
    return count


def _resolve_range(
    frame_range: tuple[int, int | None] | None, length: int | None
) -> tuple[int, int | None]:
    if frame_range is None:
        return 0, length
    start, stop = frame_range
    if length is not None:
        stop = length if stop is None else min(stop, length)
    return start, stop


def preprocess(frame_bgr: np.ndarray, spec: InputSpec) -> np.ndarray:
    """One frame → float32 ``(1, H, W, 3)`` model input, by the runtime's own preprocessor."""
    from edgedet.preprocess import Preprocessor

    out = np.empty((1, spec.height, spec.width, 3), np.float32)
    Preprocessor(spec, spec.height, spec.width, np.float32)(frame_bgr, out[0])
    return out


def representative_dataset(
    frames: Sequence[np.ndarray], spec: InputSpec, progress: bool = True
) -> Iterator[list[np.ndarray]]:
    """Yield ``[input]`` per calibration frame for ``TFLiteConverter.representative_dataset``.

    ``progress``: a tqdm bar on stderr while the converter pulls the frames.
    """
    from tqdm import tqdm  # the convert extra only; never on the device's run path

    from edgedet.preprocess import Preprocessor

    prepare = Preprocessor(spec, spec.height, spec.width, np.float32)
    for frame in tqdm(frames, desc="calibrating", unit="frame", disable=not progress):
        out = np.empty((1, spec.height, spec.width, 3), np.float32)
        prepare(frame, out[0])
        yield [out]
