"""Draw detections on a frame, and encode it as JPEG (`edgedet detect --annotate`, the
HTTP /snapshot.jpg route, snapshot files)."""

from __future__ import annotations

import cv2
import numpy as np

from edgedet.detections import Detections, floor_score


def _colour(class_id: int) -> tuple[int, int, int]:
    # A fixed, well-spread hue per class, so a label keeps its colour across frames.
    hue = (class_id * 47) % 180
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_detections(image: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of ``image`` (uint8 grey, BGR or BGRA) as BGR with each detection's box,
    label and score drawn. The input is not modified."""
    if image.ndim == 2:
        canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        canvas = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    else:
        canvas = image.copy()
    h, w = canvas.shape[:2]
    thickness = max(1, round(min(h, w) / 300))
    font_scale = max(0.4, min(h, w) / 900)
    for i in range(len(detections)):
        ymin, xmin, ymax, xmax = detections.boxes[i]
        p1 = (int(round(xmin * (w - 1))), int(round(ymin * (h - 1))))
        p2 = (int(round(xmax * (w - 1))), int(round(ymax * (h - 1))))
        colour = _colour(int(detections.class_ids[i]))
        cv2.rectangle(canvas, p1, p2, colour, thickness)
        text = f"{detections.label(i)} {floor_score(float(detections.scores[i]), 2):.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        y_text = p1[1] - 3 if p1[1] - th - base - 3 >= 0 else p1[1] + th + 3
        cv2.rectangle(
            canvas, (p1[0], y_text - th - 2), (p1[0] + tw + 2, y_text + base - 1), colour, -1
        )
        cv2.putText(
            canvas,
            text,
            (p1[0] + 1, y_text),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return canvas


JPEG_QUALITY = 85


def encode_jpeg(frame: np.ndarray, detections: Detections, quality: int = JPEG_QUALITY) -> bytes:
    """``frame`` (BGR) with ``detections`` drawn, as JPEG bytes."""
    ok, buf = cv2.imencode(
        ".jpg", draw_detections(frame, detections), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("OpenCV could not encode the frame as JPEG")
    return buf.tobytes()
