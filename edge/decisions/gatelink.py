"""The daemon's link to the gate controller: heartbeats and events on one thread.

Every `interval_s` a heartbeat goes to the controller; a missing ack makes the link `down`
(the lanes go manual and send no grants) until a heartbeat is acknowledged again. Events
(passage, tailgating, state, fault) are read from the controller's PUB socket. Everything is
handed to the inference thread through a queue, so lane machines stay single-threaded.

The link keeps why and since when it is down (`reason`, `since`: wall-clock seconds), for
`/healthz` and the lane board. A controller that does not answer the very first heartbeat is
logged at once (`gate_link_down_at_start`), not only a later drop (`gate_link_down`).
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

import structlog

from foundation.clock import Clock, SystemClock
from foundation.worker import Worker
from gate_controller.ports import GatePort

log = structlog.get_logger(__name__)

# What the link hands to the inference thread: ("up", None), ("down", reason),
# ("status", {lane: LaneState}) and ("event", Event).
LinkItem = tuple[str, Any]


class GateLink(Worker):
    """Heartbeats and events of one gate client, on a thread of its own; time from `clock`."""

    thread_name = "gate-link"
    stop_timeout_s = 3.0

    def __init__(self, client_factory: Callable[[], GatePort], interval_s: float,
                 out: queue.Queue[LinkItem], clock: Clock | None = None) -> None:
        super().__init__()
        self._factory = client_factory
        self._interval = interval_s
        self._out = out
        self._clock: Clock = clock or SystemClock()
        self.up = False
        self.beats = 0  # heartbeats tried so far
        # why the link is down, in plain words, and since when (wall clock); None while up
        self.reason: str | None = "no heartbeat answered yet"
        self.since: float = self._clock.now()

    def state(self) -> dict[str, Any]:
        """{"up", "reason", "since"} for /healthz and the board (reason None while up)."""
        return {"up": self.up, "reason": None if self.up else self.reason,
                "since": round(self.since, 3)}

    def _run(self) -> None:
        client = self._factory()
        next_beat: float | None = None
        try:
            while not self._stop.is_set():
                now = self._clock.monotonic()
                if next_beat is None or now >= next_beat:
                    next_beat = now + self._interval
                    self.beat(client)
                wait_ms = max(1, int((next_beat - self._clock.monotonic()) * 1000))
                try:
                    event = client.next_event(min(wait_ms, 100))
                except Exception as exc:  # a garbled event never stops the link
                    log.warning("gate_event_failed", error=str(exc)[:200])
                    continue
                if event is not None:
                    self._out.put(("event", event))
        finally:
            client.close()

    def beat(self, client: GatePort) -> None:
        """One heartbeat: an acknowledged one brings the link up, anything else takes it down."""
        try:
            ack = client.heartbeat()
            ok, reason = ack.ok, (ack.error or "heartbeat refused")
        except Exception as exc:
            ok, reason = False, str(exc)[:200]
        first = self.beats == 0
        self.beats += 1
        if ok and not self.up:
            self.up = True
            self.reason, self.since = None, self._clock.now()
            log.info("gate_link_up")
            self._out.put(("up", None))
            try:  # lanes the controller holds in manual, fault or emergency stay that way here
                self._out.put(("status", dict(client.status_detail().lanes or {})))
            except Exception as exc:
                log.warning("gate_status_failed", error=str(exc)[:200])
        elif not ok and self.up:
            self.up = False
            self.reason, self.since = f"gate controller not answering ({reason})", \
                self._clock.now()
            log.warning("gate_link_down", error=reason)
            self._out.put(("down", "gate controller not answering"))
        elif not ok and first:  # down from the start: say so now, not only at a later drop
            self.reason = f"gate controller not answering since the start ({reason})"
            log.warning("gate_link_down_at_start", error=reason,
                        action="start the gate controller (systemctl start consentgate-gate) "
                               "and check [gate] in the settings; lanes stay manual until then")
