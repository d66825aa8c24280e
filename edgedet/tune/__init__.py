"""`edgedet tune`: choose ``min_score`` and ``iou`` from the user's own footage.

One inference per frame fills a cache of pre-NMS candidates (`cache`); the whole
(min_score, iou) grid is evaluated from it against ground truth from annotation files
(`annotations`) or a reference model (`reference`) (`grid`, AP by pycocotools in `coco`);
`tuner` recommends an operating point and `report` writes the Markdown report, plots
(`plots`, matplotlib) and JSON. Needs the `tune` extra; nothing here is imported by the
device runtime.
"""
