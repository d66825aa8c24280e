"""Post-NMS filters: allow-list, per-label floors, area, ROI polygon."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgedet.detections import Detections
from edgedet.errors import ConfigError
from edgedet.service.filters import DetectionFilter, FiltersConfig, points_in_polygon

LABELS = ("person", "car", "dog")


def dets(rows):
    """rows: (ymin, xmin, ymax, xmax, score, class_id), given in descending score."""
    a = np.array(rows, dtype=np.float32).reshape(-1, 6)
    return Detections(a[:, :4], a[:, 4], a[:, 5].astype(np.int32), LABELS)


SAMPLE = dets(
    [
        (0.1, 0.1, 0.5, 0.3, 0.95, 0),  # person, area 0.08, centre (x 0.2, y 0.3)
        (0.0, 0.0, 1.0, 1.0, 0.90, 1),  # car, whole frame, centre (0.5, 0.5)
        (0.6, 0.6, 0.7, 0.7, 0.80, 2),  # dog, area 0.01, centre (0.65, 0.65)
        (0.2, 0.7, 0.4, 0.9, 0.60, 0),  # person, area 0.04, centre (0.8, 0.3)
        (0.5, 0.5, 0.5, 0.6, 0.55, 1),  # car, zero area
    ]
)


def kept_scores(cfg: FiltersConfig, d: Detections = SAMPLE) -> list[float]:
    return [round(float(s), 2) for s in DetectionFilter(cfg, LABELS).apply(d).scores]


def test_default_filters_keep_everything_and_return_the_same_object():
    f = DetectionFilter(FiltersConfig(), LABELS)
    assert not f.active
    assert f.apply(SAMPLE) is SAMPLE


def test_label_allow_list_keeps_order():
    assert kept_scores(FiltersConfig(labels=("person", "dog"))) == [0.95, 0.8, 0.6]


def test_per_label_min_score_is_inclusive_and_leaves_other_labels_alone():
    assert kept_scores(FiltersConfig(min_score={"person": 0.6})) == [0.95, 0.9, 0.8, 0.6, 0.55]
    assert kept_scores(FiltersConfig(min_score={"person": 0.61, "car": 0.95})) == [0.95, 0.8]


def test_area_bounds_are_inclusive():
    # areas: 0.08, 1.0, 0.01, 0.04, 0.0 (float32: compare with a tolerance-free pick)
    assert kept_scores(FiltersConfig(min_area=0.02)) == [0.95, 0.9, 0.6]
    assert kept_scores(FiltersConfig(max_area=0.5)) == [0.95, 0.8, 0.6, 0.55]
    assert kept_scores(FiltersConfig(min_area=0.005, max_area=0.5)) == [0.95, 0.8, 0.6]


def test_roi_tests_the_box_centre():
    left_half = ((0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0))
    assert kept_scores(FiltersConfig(roi=left_half)) == [0.95]  # only centre x 0.2
    top_triangle = ((0.0, 0.0), (1.0, 0.0), (1.0, 0.6))  # y <= 0.6 x
    assert kept_scores(FiltersConfig(roi=top_triangle)) == [0.6]  # centre (0.8, 0.3)


def test_filters_combine_with_and():
    cfg = FiltersConfig(labels=("person",), max_area=0.05)
    assert kept_scores(cfg) == [0.6]


def test_empty_detections_pass_through():
    empty = Detections.empty(LABELS)
    assert len(DetectionFilter(FiltersConfig(labels=("car",)), LABELS).apply(empty)) == 0


def test_unknown_labels_are_config_errors_with_a_suggestion():
    with pytest.raises(ConfigError, match="filters.labels: 'persn' is not a label.*'person'"):
        DetectionFilter(FiltersConfig(labels=("persn",)), LABELS)
    with pytest.raises(ConfigError, match="filters.min_score: 'cat' is not a label"):
        DetectionFilter(FiltersConfig(min_score={"cat": 0.5}), LABELS)


def _reference_inside(x: float, y: float, poly) -> bool:
    inside = False
    for i in range(len(poly)):
        (x1, y1), (x2, y2) = poly[i - 1], poly[i]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


coord = st.floats(0.0, 1.0, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(coord, coord), min_size=3, max_size=7),
    st.lists(st.tuples(coord, coord), min_size=1, max_size=30),
)
def test_points_in_polygon_matches_a_scalar_reference(poly, points):
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    got = points_in_polygon(xs, ys, np.array(poly, dtype=np.float64))
    expected = [_reference_inside(x, y, poly) for x, y in points]
    assert got.tolist() == expected


def test_convex_square_contains_its_interior_not_its_exterior():
    square = np.array([[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]])
    xs = np.array([0.5, 0.21, 0.79, 0.1, 0.9, 0.5])
    ys = np.array([0.5, 0.79, 0.21, 0.5, 0.5, 0.95])
    assert points_in_polygon(xs, ys, square).tolist() == [True, True, True, False, False, False]
