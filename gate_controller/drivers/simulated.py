"""The simulated gate: outputs kept in memory, inputs injected by tests, demos or drills.

Thread-safe, so a control socket thread (see `sim_control`) or a console can raise the fire
alarm, walk someone through a lane, or break the I/O while the server polls it.
"""

from __future__ import annotations

import threading
from collections import deque

from gate_controller.gateio import GateInput


class SimulatedGateIO:
    """In-process `GateIO`: `trigger_fire_alarm()`, `walk_through(lane)`, `fail()`..."""

    def __init__(self, lanes: list[str]) -> None:
        self.lanes = list(lanes)
        self._lock = threading.Lock()
        self._inputs: deque[GateInput] = deque()
        self._outputs = dict.fromkeys(self.lanes, False)
        self._alarms = dict.fromkeys(self.lanes, False)
        self._fire = False
        self._failed = False
        self.closed = False

    # ---- GateIO ------------------------------------------------------------------------
    def set_output(self, lane: str, open_: bool) -> None:
        with self._lock:
            if lane in self._outputs:
                self._outputs[lane] = open_

    def set_alarm(self, lane: str, on: bool) -> None:
        with self._lock:
            if lane in self._alarms:
                self._alarms[lane] = on

    def poll(self, now: float) -> list[GateInput]:
        with self._lock:
            items = list(self._inputs)
            self._inputs.clear()
        return items

    def close(self) -> None:
        self.closed = True

    # ---- the simulator's own controls ---------------------------------------------------
    def trigger_fire_alarm(self) -> None:
        self._set_fire(True)

    def clear_fire_alarm(self) -> None:
        self._set_fire(False)

    def _set_fire(self, active: bool) -> None:
        with self._lock:
            if active != self._fire:
                self._fire = active
                self._inputs.append(GateInput("fire_alarm", active=active))

    def walk_through(self, lane: str) -> None:
        """One person crosses the lane's passage sensor (whatever the leaf's state)."""
        if lane not in self._outputs:
            raise ValueError(f"unknown lane {lane!r}; lanes: {', '.join(self.lanes)}")
        with self._lock:
            self._inputs.append(GateInput("passage", lane=lane))

    def fail(self, reason: str = "simulated I/O failure") -> None:
        with self._lock:
            if not self._failed:
                self._failed = True
                self._inputs.append(GateInput("fault", reason=reason))

    def recover(self) -> None:
        with self._lock:
            if self._failed:
                self._failed = False
                self._inputs.append(GateInput("restored"))

    def outputs(self) -> dict[str, bool]:
        with self._lock:
            return dict(self._outputs)

    def alarms(self) -> dict[str, bool]:
        with self._lock:
            return dict(self._alarms)

    @property
    def fire_alarm_active(self) -> bool:
        with self._lock:
            return self._fire
