"""Prometheus metrics of the daemon (text exposition format 0.0.4), prefix `consentgate_`.

A tiny thread-safe registry of counters, gauges and histograms with labels, in base units
(seconds, bytes). Values are counts and timings only: no ids, no track numbers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import TypeVar

PREFIX = "consentgate_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return "{" + body + "}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


class _Metric:
    def __init__(self, name: str, help_text: str, kind: str) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.kind = kind
        self._lock = threading.Lock()

    def samples(self) -> list[str]:
        raise NotImplementedError


_M = TypeVar("_M", bound=_Metric)


class Counter(_Metric):
    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text, "counter")
        self._values: dict[Labels, float] = {}

    def inc(self, n: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + n

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            return [f"{self.name}{_fmt_labels(k)} {_num(v)}" for k, v in self._values.items()]


class Gauge(_Metric):
    """A gauge set directly or read from a callback at scrape time."""

    def __init__(self, name: str, help_text: str,
                 callback: Callable[[], dict[Labels, float]] | None = None) -> None:
        super().__init__(name, help_text, "gauge")
        self._values: dict[Labels, float] = {}
        self._callback = callback

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[tuple(sorted(labels.items()))] = float(value)

    def samples(self) -> list[str]:
        values = dict(self._values)
        if self._callback is not None:
            values.update(self._callback())
        return [f"{self.name}{_fmt_labels(k)} {_num(v)}" for k, v in values.items()]


class Histogram(_Metric):
    def __init__(self, name: str, help_text: str,
                 buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, "histogram")
        self._bounds = (*sorted(buckets), math.inf)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._n = 0

    def observe(self, value: float) -> None:
        with self._lock:
            for i, bound in enumerate(self._bounds):
                if value <= bound:
                    self._counts[i] += 1
                    break
            self._sum += value
            self._n += 1

    @property
    def count(self) -> int:
        return self._n

    def samples(self) -> list[str]:
        with self._lock:
            out, running = [], 0
            for bound, c in zip(self._bounds, self._counts, strict=True):
                running += c
                out.append(f"{self.name}_bucket{_fmt_labels((), (('le', _num(bound)),))} "
                           f"{running}")
            out.append(f"{self.name}_sum {_num(self._sum)}")
            out.append(f"{self.name}_count {self._n}")
            return out


class Registry:
    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def add(self, metric: _M) -> _M:
        self._metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str) -> Counter:
        return self.add(Counter(name, help_text))

    def gauge(self, name: str, help_text: str,
              callback: Callable[[], dict[Labels, float]] | None = None) -> Gauge:
        return self.add(Gauge(name, help_text, callback))

    def histogram(self, name: str, help_text: str,
                  buckets: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
        return self.add(Histogram(name, help_text, buckets))

    def render(self) -> str:
        lines: list[str] = []
        for m in self._metrics:
            lines.append(f"# HELP {m.name} {m.help}")
            lines.append(f"# TYPE {m.name} {m.kind}")
            lines.extend(m.samples())
        return "\n".join(lines) + "\n"


class DaemonMetrics:
    """The daemon's metrics, in one place so names stay consistent."""

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.frames = r.counter("frames_processed_total", "frames the inference loop processed")
        self.decisions = r.counter("decisions_total", "lane decision events by kind")
        self.gate_commands = r.counter("gate_commands_total", "commands sent to the gate by type")
        self.gate_errors = r.counter("gate_command_errors_total", "gate commands that failed")
        self.loop_errors = r.counter("inference_errors_total",
                                     "unexpected errors in the inference loop (restart budget)")
        self.embeddings = r.counter("embeddings_total", "probe embeddings computed (in memory)")
        self.people = r.counter("people_detected_total", "new face tracks")
        self.loop_seconds = r.histogram("inference_loop_seconds", "time per processed frame")
        self.decision_latency = r.histogram(
            "decision_latency_seconds", "first qualifying frame to the gate command")
        self.tracks = r.gauge("tracks_in_view", "face tracks in view")
        self.gate_available = r.gauge("gate_controller_up", "1 when the gate controller answers")
        self.lane_state = r.gauge("lane_state", "1 for the lane's current state")
        self.gallery_size = r.gauge("gallery_templates", "opted-in templates loaded")
        self.match_threshold = r.gauge("match_threshold", "1:N cosine threshold in effect (set "
                                       "for consent.target_fpir at the live gallery size)")
        self.match_calibrated = r.gauge("match_threshold_calibrated", "1 when the gallery size "
                                        "lies inside the impostor calibration's range")
        self.thermal_geometry = r.gauge(
            "thermal_calibration_mismatch",
            "set to 1 while live visible/thermal frame sizes differ from the thermal "
            "calibration (every reading is refused as unreliable)")
