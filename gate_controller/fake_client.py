"""An in-memory gate client for tests and demos: records commands, answers with real `Ack`s.

It satisfies `gate_controller.ports.GatePort` like the real `GateClient`: `refuse` makes every
command answer `ok=False` (as a controller in emergency_open does), `unavailable` makes every
command raise `GateUnavailableError` (as a controller that is not running), and `push_event`
queues an event for `next_event`. Lane states follow the commands the way the controller's
safety rules would for one passage (open -> open, deny/close -> closed).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Literal

from gate_controller.client import GateUnavailableError
from wire.gate import Ack, Event, LaneState


class FakeGateClient:
    """Records `(command, *args)` tuples in `calls`; thread-safe."""

    def __init__(self, lanes: tuple[str, ...] = ("A",), *, refuse: bool = False,
                 unavailable: bool = False) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.refuse = refuse
        self.unavailable = unavailable
        self.lanes = {lane: LaneState.CLOSED for lane in lanes}
        self._events: queue.Queue[Event] = queue.Queue()
        self._lock = threading.Lock()
        self.closed = False

    # ---- commands ------------------------------------------------------------------------
    def _answer(self, cmd: str, lane: str | None, state: LaneState | None,
                *args: Any) -> Ack:
        with self._lock:
            self.calls.append((cmd, *((lane,) if lane is not None else ()), *args))
            if self.unavailable:
                raise GateUnavailableError("gate controller did not acknowledge within 1000 ms; "
                                           "treat the lanes as manual")
            if self.refuse:
                return Ack(cmd=cmd, ok=False, code="refused",
                           error="lane is in emergency_open (fake)")
            if lane is not None and state is not None:
                self.lanes[lane] = state
            return Ack(cmd=cmd, ok=True, state=self.lanes.get(lane) if lane else None)

    def open(self, lane: str, grant_id: str, ttl_ms: int) -> Ack:
        return self._answer("open", lane, LaneState.OPEN, grant_id, ttl_ms)

    def deny(self, lane: str) -> Ack:
        return self._answer("deny", lane, LaneState.CLOSED)

    def reset(self, lane: str, reason: str, actor: str) -> Ack:
        return self._answer("reset", lane, LaneState.CLOSED, reason, actor)

    def override(self, lane: str, action: Literal["open", "close"], reason: str,
                 actor: str) -> Ack:
        state = LaneState.OPEN if action == "open" else LaneState.CLOSED
        return self._answer("override", lane, state, action, reason, actor)

    def heartbeat(self) -> Ack:
        return self._answer("heartbeat", None, None)

    def status(self) -> dict[str, str]:
        return {lane: state.value for lane, state in (self.status_detail().lanes or {}).items()}

    def status_detail(self) -> Ack:
        with self._lock:
            if self.unavailable:
                raise GateUnavailableError("gate controller did not acknowledge (fake)")
            return Ack(cmd="status", ok=True, lanes=dict(self.lanes), info={})

    # ---- events --------------------------------------------------------------------------
    def push_event(self, event: Event) -> None:
        self._events.put(event)

    def next_event(self, timeout_ms: int) -> Event | None:
        try:
            return self._events.get(timeout=max(0, timeout_ms) / 1000.0)
        except queue.Empty:
            return None

    def commands(self, name: str) -> list[tuple[Any, ...]]:
        """The recorded calls of one command."""
        with self._lock:
            return [c for c in self.calls if c[0] == name]

    def close(self) -> None:
        self.closed = True
