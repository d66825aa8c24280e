"""In-process metrics: counters, gauges and windowed summaries, rendered for Prometheus.

One ``Metrics`` object is shared by the run loop and every publisher. It is thread-safe
(a single lock; every operation is a few dict lookups, so contention is negligible next
to an inference) and has no dependency beyond the standard library.

Names the service records (rendered with the prefix ``edgedet_``):

counters
    ``frames_total``                     frames processed into a record
    ``frames_dropped_total``             frames the source delivered but inference skipped
                                         (latest-frame slot overwrites and motion gating)
    ``frames_skipped_total``             of those, frames motion gating skipped
    ``motion_admitted_total{reason=}``   frames motion gating let through: first, motion,
                                         present (re-detect), keepalive
    ``records_total``                    records handed to the publishers
    ``detections_total{label=}``         detections after the label filters, per label
    ``source_reconnects_total``          source reopen attempts after a failure or stall
    ``source_errors_total``              source read/open failures
    ``publish_errors_total{publisher=}`` failed writes/sends (log, mqtt, http, snapshot)
    ``publish_dropped_total{publisher=}`` records dropped because a publisher queue was full
                                         or could not be written
    ``publish_reconnects_total{publisher=}`` reconnections to the MQTT broker (publishers)
gauges
    ``fps``                              end-to-end frames per second (recent window)
    ``last_frame_timestamp_seconds``     UNIX time of the last processed frame
    ``up``                               1 while the service runs, 0 once it stops
    ``publisher_connected{publisher=}``  1 while the MQTT publisher has a broker session
summary
    ``stage_latency_seconds{stage=}``    capture, motion, preprocess, invoke, postprocess,
                                         events (tracking, event machine), publish

Other names may be used; a name keeps the kind (counter, gauge, summary) it was first used
with, and using it as another kind is a programming error (``ValueError``).

Summaries keep the last ``window`` observations per label set for quantiles (p50, p95 in
the exposition) plus an all-time count and sum, as Prometheus summaries do.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque
from typing import Any

PREFIX = "edgedet_"
SUMMARY_QUANTILES = (0.5, 0.95)

# HELP text for the names the service uses; other names get a generic line.
HELP = {
    "frames_total": "Frames processed into a record.",
    "frames_dropped_total": "Frames delivered by the source but not processed (slot or gating).",
    "frames_skipped_total": "Frames motion gating skipped (counted in frames_dropped_total too).",
    "motion_admitted_total": "Frames motion gating passed to inference, by reason.",
    "records_total": "Records handed to the publishers.",
    "detections_total": "Detections after the label filters, by label.",
    "source_reconnects_total": "Source reopen attempts after a failure or stall.",
    "source_errors_total": "Source open or read failures.",
    "source_skipped_total": "Unreadable images an image-folder source skipped.",
    "publish_errors_total": "Failed publisher writes or sends, by publisher.",
    "publish_dropped_total": "Records a publisher dropped (queue full or unwritable).",
    "publish_reconnects_total": "Reconnections of a publisher to its server, by publisher.",
    "publisher_connected": "1 while a publisher is connected to its server, by publisher.",
    "fps": "End-to-end frames per second over a recent window.",
    "last_frame_timestamp_seconds": "UNIX time of the last processed frame.",
    "up": "1 while the service is running.",
    "stage_latency_seconds": "Per-stage latency in seconds, by stage.",
}

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

LabelKey = tuple[tuple[str, str], ...]


class _Summary:
    __slots__ = ("window", "count", "total")

    def __init__(self, maxlen: int) -> None:
        self.window: deque[float] = deque(maxlen=maxlen)
        self.count = 0
        self.total = 0.0


class Metrics:
    """Thread-safe registry of counters, gauges and summaries.

    ``window`` bounds the observations a summary keeps per label set for its quantiles.
    """

    def __init__(self, window: int = 1024) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._window = window
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}
        # name -> label key -> float (counters, gauges) or _Summary
        self._values: dict[str, dict[LabelKey, Any]] = {}

    # -- recording -------------------------------------------------------------------

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add ``value`` (>= 0) to a counter."""
        if value < 0:
            raise ValueError(f"counter {name} cannot decrease (got {value})")
        key = _label_key(labels)
        with self._lock:
            series = self._series(name, "counter")
            series[key] = series.get(key, 0.0) + float(value)

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge to ``value``."""
        key = _label_key(labels)
        with self._lock:
            self._series(name, "gauge")[key] = float(value)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a summary (e.g. a latency in seconds)."""
        key = _label_key(labels)
        with self._lock:
            series = self._series(name, "summary")
            summary = series.get(key)
            if summary is None:
                summary = series[key] = _Summary(self._window)
            summary.window.append(float(value))
            summary.count += 1
            summary.total += float(value)

    # -- reading ---------------------------------------------------------------------

    def get(self, name: str, **labels: str) -> float:
        """Current value of a counter or gauge; 0.0 when never recorded.

        For a summary this is its observation count.
        """
        key = _label_key(labels)
        with self._lock:
            value = self._values.get(name, {}).get(key)
        if value is None:
            return 0.0
        if isinstance(value, _Summary):
            return float(value.count)
        return value

    def quantile(self, name: str, q: float, **labels: str) -> float | None:
        """The ``q`` quantile (0..1) of a summary's window; None when it has no observations.

        Linear interpolation between the closest ranks (NumPy's default ``linear`` method).
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        key = _label_key(labels)
        with self._lock:
            summary = self._values.get(name, {}).get(key)
            data = sorted(summary.window) if isinstance(summary, _Summary) else []
        return _quantile_sorted(data, q)

    def render_prometheus(self) -> str:
        """All metrics in the Prometheus text exposition format 0.0.4.

        Names get the ``edgedet_`` prefix; each family has one HELP and one TYPE line;
        summaries render ``{quantile="0.5"}``/``{quantile="0.95"}`` (NaN when empty),
        ``_sum`` and ``_count``. Ends with a newline.
        """
        lines: list[str] = []
        with self._lock:
            families = [
                (name, self._kinds[name], dict(series)) for name, series in self._values.items()
            ]
            summaries = {
                (name, key): (sorted(s.window), s.count, s.total)
                for name, kind, series in families
                if kind == "summary"
                for key, s in series.items()
            }
        for name, kind, series in sorted(families):
            full = PREFIX + name
            help_text = HELP.get(name, f"edgedet metric {name}.")
            lines.append(f"# HELP {full} {_escape_help(help_text)}")
            lines.append(f"# TYPE {full} {kind}")
            for key in sorted(series):
                if kind == "summary":
                    data, count, total = summaries[(name, key)]
                    for q in SUMMARY_QUANTILES:
                        value = _quantile_sorted(data, q)
                        qkey = key + (("quantile", _format_value(q)),)
                        lines.append(
                            f"{full}{_render_labels(qkey)} "
                            f"{_format_value(math.nan if value is None else value)}"
                        )
                    lines.append(f"{full}_sum{_render_labels(key)} {_format_value(total)}")
                    lines.append(f"{full}_count{_render_labels(key)} {_format_value(count)}")
                else:
                    lines.append(f"{full}{_render_labels(key)} {_format_value(series[key])}")
        return "\n".join(lines) + "\n" if lines else ""

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view for MQTT stats and the run summary.

        ``{name: value}`` for an unlabelled counter or gauge; ``{name: {"k=v,...": value}}``
        when the metric has labels; a summary's value is ``{"count", "sum", "p50", "p95"}``
        (quantiles None when empty). Non-finite gauge values become None.
        """
        with self._lock:
            copied = []
            for name, series in self._values.items():
                items = []
                for key, value in series.items():
                    if isinstance(value, _Summary):
                        value = (sorted(value.window), value.count, value.total)
                    items.append((key, value))
                copied.append((name, self._kinds[name], items))
        out: dict[str, Any] = {}
        for name, kind, items in sorted(copied):
            rendered: dict[str, Any] = {}
            for key, value in sorted(items):
                if kind == "summary":
                    data, count, total = value
                    value = {
                        "count": count,
                        "sum": total,
                        "p50": _quantile_sorted(data, 0.5),
                        "p95": _quantile_sorted(data, 0.95),
                    }
                else:
                    value = value if math.isfinite(value) else None
                rendered[",".join(f"{k}={v}" for k, v in key)] = value
            if list(rendered) == [""]:
                out[name] = rendered[""]
            else:
                out[name] = rendered
        return out

    # -- internals -------------------------------------------------------------------

    def _series(self, name: str, kind: str) -> dict[LabelKey, Any]:
        """The series dict of ``name``, created as ``kind``; caller holds the lock."""
        known = self._kinds.get(name)
        if known is None:
            if not _NAME_RE.match(name):
                raise ValueError(f"invalid metric name {name!r}")
            self._kinds[name] = kind
            self._values[name] = {}
        elif known != kind:
            raise ValueError(f"metric {name} is a {known}, not a {kind}")
        return self._values[name]


def _label_key(labels: dict[str, str]) -> LabelKey:
    for label in labels:
        if not _LABEL_RE.match(label) or label.startswith("__") or label == "quantile":
            raise ValueError(f"invalid label name {label!r}")
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _quantile_sorted(data: list[float], q: float) -> float | None:
    if not data:
        return None
    pos = q * (len(data) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _render_labels(key: LabelKey) -> str:
    if not key:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in key) + "}"
