"""COCO JSON, YOLO txt and Pascal VOC XML files of the same objects give the same tuning."""

from __future__ import annotations

import numpy as np
import pytest
from tune_support import write_coco, write_voc, write_yolo

from edgedet.errors import InputError
from edgedet.tune.annotations import match_images, read_annotations, resolve_labels
from edgedet.tune.tuner import TuneOptions, tune


@pytest.fixture(scope="module")
def annotation_sets(truth_objects, tmp_path_factory):
    root = tmp_path_factory.mktemp("annotations")
    return {
        "coco": write_coco(root / "coco.json", truth_objects, person_name="pedestrian"),
        "yolo": write_yolo(root / "yolo", truth_objects),
        "voc": write_voc(root / "voc", truth_objects),
    }


def test_each_format_reads_back_the_same_boxes(annotation_sets, truth_objects, image_folder):
    names = sorted(truth_objects)
    class_of = {"person": 0, "pedestrian": 0, "dog": None}
    for fmt, path in annotation_sets.items():
        ann = read_annotations(path)
        assert ann.format == fmt
        chosen, key_of = match_images(ann, names)
        assert sorted(chosen) == names
        for name in names:
            truth = ann.truth(key_of[name], 576, 768, class_of)
            expected = np.array(
                [
                    [y0 / 576, x0 / 768, y1 / 576, x1 / 768]
                    for lab, (x0, y0, x1, y1) in truth_objects[name]
                    if lab == "person"
                ]
            ).reshape(-1, 4)
            np.testing.assert_allclose(truth.boxes, expected, atol=1e-12, err_msg=f"{fmt} {name}")
            assert truth.class_ids.tolist() == [0] * len(expected)


def test_the_three_formats_give_the_same_grid(
    annotation_sets, image_folder, bundled_model, tmp_path
):
    maps = {"coco": ("pedestrian=person", "dog=-"), "yolo": ("dog=-",), "voc": ("dog=-",)}
    results = {
        fmt: tune(
            TuneOptions(
                bundled_model, image_folder, annotations=path, label_map=maps[fmt], plots=False
            )
        )
        for fmt, path in annotation_sets.items()
    }
    coco = results["coco"]
    assert coco.chosen.truth > 16
    for fmt in ("yolo", "voc"):
        other = results[fmt]
        assert np.array_equal(other.grid.tp, coco.grid.tp), fmt
        assert np.array_equal(other.grid.detections, coco.grid.detections), fmt
        assert other.chosen == coco.chosen
        np.testing.assert_allclose(other.ap_chosen.ap, coco.ap_chosen.ap, atol=1e-9)
    # The truth is the model's own detections at 0.6: recall there is complete.
    si = list(coco.grid.min_scores).index(0.6)
    ti = list(coco.grid.ious).index(0.6)
    m = coco.grid.metrics()
    assert m["recall"][si, ti] == 1.0 and m["precision"][si, ti] == 1.0


def test_unknown_label_names_the_label_and_the_fix(annotation_sets):
    ann = read_annotations(annotation_sets["voc"])
    with pytest.raises(InputError, match=r"label 'dog' .*--label-map dog=LABEL.*dog=-"):
        resolve_labels(ann.label_names(), ("person",), {}, ann.source)


def test_yolo_and_voc_files_whose_image_is_missing(truth_objects, tmp_path):
    objects = {**truth_objects, "gone.png": [("person", [1, 2, 30, 40])]}
    names = sorted(truth_objects)
    yolo = read_annotations(write_yolo(tmp_path / "yolo", objects))
    with pytest.raises(InputError, match=r"gone\.txt: no image gone\.\* in the data folder"):
        match_images(yolo, names)
    voc = read_annotations(write_voc(tmp_path / "voc", objects))
    with pytest.raises(InputError, match=r"image gone\.png is annotated but not in the data"):
        match_images(voc, names)


def test_an_unreachable_target_names_the_flag(annotation_sets, image_folder, bundled_model):
    opts = TuneOptions(
        bundled_model,
        image_folder,
        annotations=annotation_sets["yolo"],
        label_map=("dog=-",),
        target_recall=1.0,
        plots=False,
    )
    # The truth holds boxes the model finds at 0.6, so full recall is reachable...
    assert tune(opts).chosen.recall == 1.0
    # ...but not with an object nothing detects.
    extra = annotation_sets["yolo"].parent / "yolo-extra"
    write_yolo(extra, {"frame0.png": [("person", [700, 500, 760, 570])]})
    with pytest.raises(InputError, match=r"no setting reaches recall 1 .*lower --target-recall"):
        tune(
            TuneOptions(
                bundled_model, image_folder, annotations=extra, target_recall=1.0, plots=False
            )
        )
