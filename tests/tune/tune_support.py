"""Helpers for the tune tests: write the three annotation formats."""

from __future__ import annotations

import json
from pathlib import Path


def write_coco(path: Path, objects, size=(576, 768), person_name="person") -> Path:
    h, w = size
    images, anns = [], []
    cats = {"person": 1, "dog": 18}
    for img_id, (name, objs) in enumerate(sorted(objects.items()), 1):
        images.append({"id": img_id, "file_name": name, "height": h, "width": w})
        for label, (x0, y0, x1, y1) in objs:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": cats[label],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": 1, "name": person_name}, {"id": 18, "name": "dog"}]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return path


def write_yolo(folder: Path, objects, size=(576, 768)) -> Path:
    h, w = size
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("person\ndog\n")
    for name, objs in objects.items():
        lines = []
        for label, (x0, y0, x1, y1) in objs:
            cls = ["person", "dog"].index(label)
            cx, cy, bw, bh = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h
            lines.append(f"{cls} {cx!r} {cy!r} {bw!r} {bh!r}")
        (folder / (Path(name).stem + ".txt")).write_text("\n".join(lines) + "\n")
    return folder


def write_voc(folder: Path, objects, size=(576, 768)) -> Path:
    h, w = size
    folder.mkdir(parents=True, exist_ok=True)
    for name, objs in objects.items():
        parts = [f"<annotation><filename>{name}</filename>"]
        parts.append(f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>")
        for label, (x0, y0, x1, y1) in objs:
            # VOC: 1-based inclusive pixel indices; the left edge x0 is pixel x0 + 1.
            parts.append(
                f"<object><name>{label}</name><difficult>0</difficult><bndbox>"
                f"<xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
                "</bndbox></object>"
            )
        parts.append("</annotation>")
        (folder / (Path(name).stem + ".xml")).write_text("".join(parts))
    return folder
