"""A folder of images, read in sorted name order, once or looped."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from edgedet.errors import SourceError
from edgedet.sources import IMAGE_SUFFIXES, EndOfSource, Frame, Source


class ImageFolderSource(Source):
    """Images of a folder (by file name suffix), sorted by name.

    An image OpenCV cannot decode is skipped and counted (``stats()["skipped"]``), never
    delivered, so it is not a dropped frame. The folder is listed again at the start of
    each pass, so images added while looping are picked up. ``index`` is the position of
    the image in the sorted listing of the current pass. ``fps``: the rate used when the
    run paces sources in real time (``source.realtime``).
    """

    finite = True

    def __init__(self, path: str, *, loop: bool = False, fps: float | None = None) -> None:
        self.path = Path(path).expanduser()
        self.name = self.path.name or str(self.path)
        self.loop = loop
        self.fps = fps
        self._files: list[Path] = []
        self._pos = 0
        self._delivered_this_pass = 0
        self.skipped = 0

    def _list(self) -> list[Path]:
        try:
            entries = sorted(self.path.iterdir())
        except OSError as exc:
            raise SourceError(
                f"source {self.path}: cannot list the folder ({exc.strerror})"
            ) from None
        return [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]

    def open(self) -> None:
        if not self.path.is_dir():
            raise SourceError(f"source {self.path}: no such folder; check --source")
        self._files = self._list()
        if not self._files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise SourceError(f"source {self.path}: no images in the folder ({suffixes})")
        self._pos = 0
        self._delivered_this_pass = 0

    def read(self, timeout: float) -> Frame | None:
        while True:
            if self._pos >= len(self._files):
                if not self.loop:
                    raise EndOfSource(str(self.path))
                if self._delivered_this_pass == 0:
                    # Looping over nothing readable would spin forever.
                    raise SourceError(f"source {self.path}: none of the images can be read")
                self.open()
            index = self._pos
            file = self._files[index]
            self._pos += 1
            image = cv2.imread(str(file), cv2.IMREAD_COLOR)
            if image is None:
                self.skipped += 1
                continue
            self._delivered_this_pass += 1
            return Frame(index, image, time.time())

    def close(self) -> None:
        self._files = []
        self._pos = 0

    def stats(self) -> dict[str, int]:
        return {"skipped": self.skipped}
