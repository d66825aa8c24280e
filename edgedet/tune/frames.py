"""The frames `edgedet tune` measures on: an image folder, or frames sampled from a video.

A `FrameSet` knows its frame names up front and reads the images lazily, one at a time,
so a long clip is never held in memory; the few frames drawn for the report are read again
by name. Names are what annotation files refer to: an image's path relative to the
folder, or ``frame_000123`` (the video frame index) for a video.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedet.errors import InputError
from edgedet.sources import IMAGE_SUFFIXES

VIDEO_FRAMES = 200  # frames sampled from a video when no limit is given


def even_sample(count: int, limit: int | None) -> list[int]:
    """``limit`` indices spread evenly over ``range(count)`` (all of them when
    ``limit`` is None or not smaller), ascending and distinct, first and last included."""
    if limit is None or limit >= count:
        return list(range(count))
    if limit <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, count - 1, limit)})


@dataclass(frozen=True)
class FrameSet:
    """Frames of an image folder (``images``: paths) or a video (``video`` + indices)."""

    path: Path
    names: tuple[str, ...]
    images: tuple[Path, ...] = ()  # folder mode, parallel to names
    video_indices: tuple[int, ...] = ()  # video mode, parallel to names

    @property
    def is_video(self) -> bool:
        return not self.images

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, BGR uint8 image) in order. Raises `InputError` for an unreadable image."""
        if self.is_video:
            yield from self._video_frames(set(self.video_indices))
            return
        for name, file in zip(self.names, self.images, strict=True):
            yield name, _read_image(file)

    def read(self, name: str) -> np.ndarray:
        """One frame again, by name."""
        i = self.names.index(name)
        if not self.is_video:
            return _read_image(self.images[i])
        for _, image in self._video_frames({self.video_indices[i]}):
            return image
        raise InputError(f"video {self.path}: frame {self.video_indices[i]} can no longer be read")

    def _video_frames(self, wanted: set[int]) -> Iterator[tuple[str, np.ndarray]]:
        import cv2

        cap = cv2.VideoCapture(str(self.path))
        try:
            index, last = 0, max(wanted, default=-1)
            while index <= last:
                # grab() skips decoding frames we do not keep.
                if not cap.grab():
                    raise InputError(
                        f"video {self.path}: ended at frame {index} while reading frame {last}; "
                        "the file is truncated, re-encode or copy it again"
                    )
                if index in wanted:
                    ok, image = cap.retrieve()
                    if not ok:
                        raise InputError(f"video {self.path}: frame {index} cannot be decoded")
                    yield f"frame_{index:06d}", image
                index += 1
        finally:
            cap.release()

    def fingerprint(self) -> str:
        """sha256 over the bytes of the files measured and which frames were used."""
        digest = hashlib.sha256()
        files = [self.path] if self.is_video else list(self.images)
        for file in files:
            with open(file, "rb") as f:
                for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                    digest.update(chunk)
        digest.update("\n".join(self.names).encode())
        return digest.hexdigest()


def _read_image(file: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(file), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {file}: unreadable or not an image; remove it")
    return image


def list_images(folder: Path) -> list[Path]:
    """Image files (by suffix) anywhere under ``folder``, sorted by relative path."""
    return sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def open_frames(
    data: str | Path, limit: int | None = None, only: Sequence[str] | None = None
) -> FrameSet:
    """The frames of ``data`` (an image folder or a video file), ``limit`` spread evenly
    (default: every image of a folder, `VIDEO_FRAMES` of a video).

    ``only``: for a folder, restrict to these relative names first (the annotated
    images), in that order. Raises `InputError` naming the path when there is nothing to
    measure or the video cannot be opened.
    """
    path = Path(data).expanduser()
    if limit is not None and limit < 1:
        raise InputError(f"--frames must be at least 1, got {limit}")
    if path.is_dir():
        if only is not None:
            files = [path / name for name in only]
            names = list(only)
        else:
            files = list_images(path)
            names = [f.relative_to(path).as_posix() for f in files]
        if not files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise InputError(
                f"{path}: no images in the folder ({suffixes}); pass a folder of images or a video"
            )
        keep = even_sample(len(files), limit)
        return FrameSet(path, tuple(names[i] for i in keep), images=tuple(files[i] for i in keep))
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder; pass an image folder or a video")
    count = _video_length(path)
    keep = even_sample(count, VIDEO_FRAMES if limit is None else limit)
    return FrameSet(path, tuple(f"frame_{i:06d}" for i in keep), video_indices=tuple(keep))


def _video_length(path: Path) -> int:
    """Number of decodable frames (counted, since container headers can be wrong)."""
    import cv2

    from edgedet.sources.opencv import quiet_opencv

    quiet_opencv()  # FFmpeg prints its own line for a file it cannot parse; our error says it once
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(
                f"{path}: cannot be opened as a video (not a video, or a codec OpenCV lacks); "
                "re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or extract images"
            )
        count = 0
        while cap.grab():
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise InputError(f"{path}: the video has no readable frames; check the file")
    return count
