"""Video file and image folder sources on real files written by the tests."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from srcmedia import frame_image, index_of

from edgedet.errors import SourceError
from edgedet.sources import EndOfSource, SourceConfig, classify, make_source
from edgedet.sources.folder import ImageFolderSource
from edgedet.sources.opencv import CameraSource, VideoFileSource


def read_all(source, limit: int = 1000):
    frames = []
    with pytest.raises(EndOfSource):
        for _ in range(limit):
            frames.append(source.read(1.0))
    return frames


def test_video_file_delivers_every_frame_in_order_then_ends(video):
    src = VideoFileSource(str(video(12, fps=30)))
    src.open()
    frames = read_all(src)
    src.close()
    assert [f.index for f in frames] == list(range(12))
    assert [index_of(f.image) for f in frames] == list(range(12))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert src.fps == pytest.approx(30.0)


def test_looped_video_file_restarts_at_the_first_frame(video):
    src = VideoFileSource(str(video(5)), loop=True)
    src.open()
    frames = [src.read(1.0) for _ in range(13)]
    src.close()
    expected = [i % 5 for i in range(13)]
    assert [f.index for f in frames] == expected
    assert [index_of(f.image) for f in frames] == expected


def test_missing_and_undecodable_files_raise_one_line_source_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file or folder"):
        make_source(SourceConfig(uri=str(tmp_path / "nope.mp4")))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    src = make_source(SourceConfig(uri=str(junk)))
    with pytest.raises(SourceError, match="not a readable video") as info:
        src.open()
    assert "\n" not in str(info.value)


def test_image_folder_is_read_in_name_order_skipping_unreadable_images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in (3, 0, 2):
        cv2.imwrite(str(folder / f"img_{i:02d}.png"), frame_image(i))
    (folder / "img_01.jpg").write_bytes(b"not a jpeg")  # unreadable: skipped, counted
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    src = make_source(SourceConfig(uri=str(folder)))
    assert isinstance(src, ImageFolderSource)
    src.open()
    frames = read_all(src)
    assert [index_of(f.image) for f in frames] == [0, 2, 3]
    assert [f.index for f in frames] == [0, 2, 3]  # position in the sorted listing
    assert src.stats() == {"skipped": 1}


def test_looped_image_folder_picks_up_new_images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), frame_image(1))
    src = ImageFolderSource(str(folder), loop=True)
    src.open()
    assert index_of(src.read(1.0).image) == 1
    cv2.imwrite(str(folder / "b.png"), frame_image(2))
    assert [index_of(src.read(1.0).image) for _ in range(3)] == [1, 2, 1]


def test_empty_or_unreadable_folders_are_source_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(str(empty)).open()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"broken")
    src = ImageFolderSource(str(bad), loop=True)
    src.open()
    with pytest.raises(SourceError, match="none of the images can be read"):
        src.read(1.0)


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("0", "camera"),
        ("/dev/video7", "camera"),
        ("rtsp://192.0.2.1/stream", "url"),
        ("http://127.0.0.1:8000/video.mjpg", "url"),
        ("picamera2", "picamera2"),
    ],
)
def test_source_strings_choose_the_plugin(uri, kind):
    assert classify(uri) == kind


def test_absent_camera_device_is_a_source_error_at_open():
    src = make_source(SourceConfig(uri="/dev/video63"))
    assert isinstance(src, CameraSource)
    with pytest.raises(SourceError, match="no such camera device"):
        src.open()
    with pytest.raises(SourceError, match="no camera at /dev/video63"):
        make_source(SourceConfig(uri="63")).open()


def test_picamera2_yuv420_with_row_padding_converts_like_unpadded():
    from edgedet.sources.picam import i420_to_bgr

    h, w, pad = 48, 64, 64
    bgr = np.zeros((h, w, 3), np.uint8)
    bgr[:, :, 0] = np.arange(w, dtype=np.uint8)[None, :] * 3  # gradients: any plane mix-up shows
    bgr[:, :, 2] = np.arange(h, dtype=np.uint8)[:, None] * 5
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)  # (h * 3 / 2, w), unpadded
    y = i420[:h]
    u = i420[h:].reshape(-1)[: (h // 2) * (w // 2)].reshape(h // 2, w // 2)
    v = i420[h:].reshape(-1)[(h // 2) * (w // 2) :].reshape(h // 2, w // 2)
    stride = w + pad  # as picamera2 lays it out: padded Y rows, then U, then V
    padded = np.zeros((h * 3 // 2, stride), np.uint8)
    padded[:h, :w] = y
    uu = np.zeros((h // 2, stride // 2), np.uint8)
    vv = np.zeros((h // 2, stride // 2), np.uint8)
    uu[:, : w // 2], vv[:, : w // 2] = u, v
    chroma = np.concatenate([uu.reshape(-1), vv.reshape(-1)])
    padded[h:] = chroma.reshape(h // 2, stride)
    expected = cv2.cvtColor(i420, cv2.COLOR_YUV2BGR_I420)
    assert np.array_equal(i420_to_bgr(i420, w, h), expected)
    assert np.array_equal(i420_to_bgr(padded, w, h), expected)
    assert np.abs(expected.astype(int) - bgr.astype(int)).max() <= 12  # it is the image


def test_open_source_takes_a_plain_source_string(video):
    from edgedet.sources import open_source

    src = open_source(str(video(3)))
    try:
        assert [index_of(src.read(1.0).image) for _ in range(3)] == [0, 1, 2]
    finally:
        src.close()
