"""Named zones: polygons in normalized frame coordinates, label filters, inertia.

A zone is a simple polygon ``[[x, y], ...]`` (x right, y down, both in [0, 1] of the
frame; at least 3 points, edges must not cross). An object is *inside* when its reference
point, the bottom centre of its box (where a person stands, where a car touches the
ground), is inside the polygon (even-odd rule; a point exactly on an edge may fall either
way). ``labels`` limits the zone to some labels (empty: every label).

Inertia: an object *enters* a zone after ``inertia`` consecutive matched frames inside and
*leaves* after ``inertia`` consecutive matched frames outside, so boxes jittering across
an edge do not flap the zone on and off. Frames where the tracker did not see the object
change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from edgedet.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9_-]+$")
RESERVED = ("all", "events", "status", "stats", "detections")  # topics under the prefix


@dataclass(frozen=True)
class ZoneConfig:
    """One entry of the ``zones:`` mapping (key = zone name)."""

    polygon: tuple[tuple[float, float], ...] = ()  # [[x, y], ...] normalized, >= 3 points
    labels: tuple[str, ...] = ()  # only these labels count here; empty = every label
    inertia: int = 3  # consecutive frames inside (outside) before entering (leaving)


@dataclass(frozen=True)
class Zone:
    name: str
    polygon: np.ndarray  # (P, 2) float64 x, y
    labels: frozenset[str] = field(default_factory=frozenset)
    inertia: int = 3

    def accepts(self, label: str) -> bool:
        return not self.labels or label in self.labels

    def contains(self, points: np.ndarray) -> np.ndarray:
        """bool (N,): which of ``points`` (N, 2) x, y lie inside (even-odd rule)."""
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        x, y = pts[:, 0:1], pts[:, 1:2]
        a = self.polygon
        b = np.roll(a, -1, axis=0)
        crosses = (a[:, 1] > y) != (b[:, 1] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        return np.count_nonzero(crosses & (x < x_at), axis=1) % 2 == 1


def reference_points(boxes: np.ndarray) -> np.ndarray:
    """(N, 2) x, y bottom centres of ``[ymin, xmin, ymax, xmax]`` boxes."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack([(b[:, 1] + b[:, 3]) / 2, b[:, 2]], axis=1)


def _segments_cross(p1, p2, q1, q2) -> bool:
    """Proper or touching intersection of segments p1p2 and q1q2."""

    def orient(a, b, c) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    def on(a, b, c) -> bool:
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(
            a[1], b[1]
        )

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0) and d1 != 0 and d2 != 0) and (
        (d3 > 0) != (d4 > 0) and d3 != 0 and d4 != 0
    ):
        return True
    return (
        (d1 == 0 and on(q1, q2, p1))
        or (d2 == 0 and on(q1, q2, p2))
        or (d3 == 0 and on(p1, p2, q1))
        or (d4 == 0 and on(p1, p2, q2))
    )


def self_intersects(polygon: np.ndarray) -> bool:
    """True when two non-adjacent edges of the closed polygon touch or cross."""
    n = len(polygon)
    edges = [(polygon[i], polygon[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a vertex
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def build_zones(zones: Mapping[str, ZoneConfig], key: str = "zones") -> list[Zone]:
    """Validated ``Zone`` objects in config order; ConfigError naming the key otherwise."""
    out = []
    for name, zc in zones.items():
        path = f"{key}.{name}"
        if not NAME.match(name):
            raise ConfigError(f"{path}: zone names may use letters, digits, _ and - only")
        if name in RESERVED:
            raise ConfigError(f"{path}: '{name}' is reserved (MQTT topic); rename the zone")
        poly = np.asarray(zc.polygon, np.float64).reshape(-1, 2)
        if len(poly) < 3:
            raise ConfigError(f"{path}.polygon: expected at least 3 [x, y] points, got {len(poly)}")
        bad = np.flatnonzero(((poly < 0) | (poly > 1)).any(axis=1))
        if len(bad):
            i = int(bad[0])
            raise ConfigError(
                f"{path}.polygon[{i}]: expected x, y in [0, 1] (normalized), got {zc.polygon[i]!r}"
            )
        if self_intersects(poly):
            raise ConfigError(
                f"{path}.polygon: edges cross each other; list the points in order around the zone"
            )
        area = 0.5 * abs(
            np.dot(poly[:, 0], np.roll(poly[:, 1], -1))
            - np.dot(poly[:, 1], np.roll(poly[:, 0], -1))
        )
        if area <= 0:
            raise ConfigError(f"{path}.polygon: the points enclose no area")
        if zc.inertia < 1:
            raise ConfigError(f"{path}.inertia: expected an integer >= 1, got {zc.inertia}")
        out.append(Zone(name, poly, frozenset(zc.labels), int(zc.inertia)))
    return out


def check_zone_names(names: Iterable[str], zones: Mapping[str, object], key: str) -> None:
    """ConfigError when ``names`` (a config list at ``key``) mentions an unknown zone."""
    for i, name in enumerate(names):
        if name not in zones:
            known = ", ".join(zones) or "none defined"
            raise ConfigError(f"{key}[{i}]: unknown zone '{name}' (zones: {known})")


class ZonePresence:
    """Which zones one tracked object is in, with inertia (see the module docstring)."""

    def __init__(self, zones: list[Zone], label: str) -> None:
        self._zones = [z for z in zones if z.accepts(label)]
        self._inertia = np.array([z.inertia for z in self._zones], np.int64)
        self._streak = np.zeros(len(self._zones), np.int64)  # frames disagreeing with state
        self._inside = np.zeros(len(self._zones), bool)
        self.entered: list[str] = []  # zones ever entered, in order of entry

    @property
    def current(self) -> list[str]:
        return [z.name for z, inside in zip(self._zones, self._inside, strict=True) if inside]

    def update(self, box: np.ndarray) -> bool:
        """Feed one matched box; True when the current zones changed."""
        if not self._zones:
            return False
        point = reference_points(box)
        now = np.array([bool(z.contains(point)[0]) for z in self._zones])
        disagree = now != self._inside
        self._streak = np.where(disagree, self._streak + 1, 0)
        flip = disagree & (self._streak >= self._inertia)
        if not flip.any():
            return False
        self._inside = np.where(flip, now, self._inside)
        self._streak[flip] = 0
        for z, f, inside in zip(self._zones, flip, self._inside, strict=True):
            if f and inside and z.name not in self.entered:
                self.entered.append(z.name)
        return True
