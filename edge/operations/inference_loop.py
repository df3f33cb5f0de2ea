"""The daemon's inference loop: newest frame in, one pipeline step, the watchdog fed, purges.

`InferenceLoop.run` runs on the calling thread until `stop_event` is set (or `until`, a
monotonic time). Each turn drains the gate link's queue into the pipeline, waits up to 0.1 s
for a frame newer than the last (attaching the newest thermal frame, when a separate thermal
camera runs and it is close enough in time) and processes it, or ticks the lanes' timers.

One bad frame never stops the gate: a ConsentGateError is logged and the loop goes on (but a
SettingsError, such as lane zones drawn for another camera resolution, stops the daemon). An
unexpected error is retried within the restart budget (DESIGN: 5 a minute); past it, or when a
camera reader gave up, the loop raises DaemonError so the daemon exits non-zero and systemd
restarts it. The watchdog is fed every half of systemd's interval (5 s without one), and
`purge` runs every `purge_interval_s`.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from edge.operations.errors import DaemonError
from foundation.clock import Clock
from foundation.errors import ConsentGateError
from foundation.restart_budget import RestartBudget
from foundation.settings_base import SettingsError

log = structlog.get_logger(__name__)

THERMAL_MAX_SKEW_S = 0.5


@dataclass
class InferenceLoop:
    pipeline: Any  # process(frame), tick(), gate_up(), gate_down(why), on_gate_event/status, lanes
    reader: Any  # the visible camera's LatestFrameReader
    clock: Clock
    notifier: Any  # SdNotifier: ready(), watchdog(), watchdog_interval_s()
    metrics: Any  # DaemonMetrics (loop_errors)
    budget: RestartBudget
    stop_event: threading.Event
    gate_queue: queue.Queue[tuple[str, Any]]  # edge.decisions.gatelink.LinkItem
    purge: Callable[[], None]
    purge_interval_s: float
    thermal_reader: Any = None
    readers: list[tuple[str, Any]] = field(default_factory=list)  # watched for giving up
    on_beat: Callable[[float], None] = lambda _now: None

    def run(self, until: float | None = None) -> None:
        pipeline = self.pipeline
        watchdog_every = self.notifier.watchdog_interval_s() or 5.0
        next_watchdog = 0.0
        next_purge = self.clock.monotonic() + self.purge_interval_s
        last_seq = 0
        self.notifier.ready(f"lanes {len(pipeline.lanes)}")
        while not self.stop_event.is_set():
            now = self.clock.monotonic()
            if until is not None and now >= until:
                break
            self.on_beat(now)
            self._drain_gate_queue()
            frame = self.reader.wait_frame(last_seq, 0.1)
            if frame is None:
                pipeline.tick()
            else:
                last_seq = frame.seq
                if self.thermal_reader is not None and frame.thermal is None:
                    frame = self._attach_thermal(frame)
                try:
                    pipeline.process(frame)
                except SettingsError:  # e.g. zones drawn for another resolution: stop
                    raise
                except ConsentGateError as exc:  # one bad frame never stops the gate
                    log.warning("frame_failed", error=str(exc)[:200])
                except Exception as exc:  # unexpected: retried within the restart budget
                    self._crashed(exc)
            for name, reader in self.readers:
                if reader.gave_up:
                    raise DaemonError(
                        f"the {name} camera kept failing ({reader.source.name}); see the log "
                        "event capture_gave_up. The daemon stops so systemd restarts it: check "
                        "the camera and capture settings")
            if now >= next_watchdog:
                self.notifier.watchdog()
                next_watchdog = now + watchdog_every
            if now >= next_purge:
                next_purge = now + self.purge_interval_s
                self.purge()

    def _crashed(self, exc: Exception) -> None:
        """An unexpected error on one frame: go on while the restart budget lasts; past it
        stop (exit non-zero) rather than loop on a broken engine forever."""
        self.metrics.loop_errors.inc()
        if self.budget.spend():
            log.error("frame_crashed", error=type(exc).__name__, detail=str(exc)[:200],
                      recent=self.budget.recent)
            return
        b = self.budget
        raise DaemonError(f"the inference loop failed {b.recent} times within {b.window_s:g} s "
                          f"(last: {type(exc).__name__}: {str(exc)[:120]}); the daemon stops so "
                          "systemd restarts it: see the log events frame_crashed") from exc

    def _attach_thermal(self, frame: Any) -> Any:
        t = self.thermal_reader.wait_frame(0, 0)
        if t is None or abs(t.captured_mono - frame.captured_mono) > THERMAL_MAX_SKEW_S:
            return frame
        return dataclasses.replace(frame, thermal=t.thermal)

    def _drain_gate_queue(self) -> None:
        while True:
            try:
                what, item = self.gate_queue.get_nowait()
            except queue.Empty:
                return
            if what == "up":
                self.pipeline.gate_up()
            elif what == "down":
                self.pipeline.gate_down(str(item))
            elif what == "event":
                self.pipeline.on_gate_event(item)
            elif what == "status":
                self.pipeline.on_gate_status(item)
