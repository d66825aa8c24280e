"""`Detections` records: what is printed can be fed back as a threshold."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from edgedet.detections import Detections, floor_score

float32_scores = st.floats(0, 1, width=32)


@given(float32_scores)
def test_a_reported_score_is_never_above_the_score(score):
    reported = floor_score(score)
    assert reported <= score and score - reported < 1e-4
    # What `--min-score reported` compares with (min_score rounded to float32) passes.
    assert np.float32(score) >= np.float32(reported)
    assert np.float32([score]) >= reported  # the filters' own comparison
    assert reported == round(reported, 4)


def test_records_round_scores_down_and_boxes_to_nearest():
    scores = np.float32([0.81288516, 0.37998250, 0.5])
    boxes = np.float32([[0.123456, 0, 1, 0.99996]] * 3)
    records = Detections(boxes, scores, [0, 0, 1], ("person",)).to_records()
    assert [r["score"] for r in records] == [0.8128, 0.3799, 0.5]
    assert records[0]["box"] == [0.1235, 0.0, 1.0, 1.0]
    assert [r["label"] for r in records] == ["person", "person", "1"]
    assert all(type(r["class_id"]) is int for r in records)
