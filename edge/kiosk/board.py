"""The lane board hub: live lane states, alerts and today's counts, published by the daemon.

The daemon's worker threads call `publish_state`, `publish_alert` and `record_count`; the kiosk
streams the resulting events to browsers (server-sent events). Everything is guarded by one lock;
subscribers created inside an asyncio loop receive events through `call_soon_threadsafe`, others
through a thread-safe queue. A subscriber that falls behind is not allowed to grow without bound:
its queue is cleared and it receives one fresh snapshot instead. `end_streams` (the daemon,
before it stops the web server) closes every subscription and wakes its consumer, so open
lane-board streams end at once and the server's graceful shutdown does not wait on them.

`publish_pad` says which presentation-attack detection runs (thermal, visible model or none),
one line above the lanes. `publish_boarding` sets what the gate boards now (edge.consent.
boarding's summary: flights and days, who set them), shown above the lanes. `publish_health`
carries what /healthz knows, in staff's words (edge.kiosk.board_feed.board_health): it drives
the live badge. `acknowledge` marks an alert seen by a staff member. With a `counts` store
(edge.kiosk.board_counts) today's counts survive a restart (saved at most once a second).
Nothing here carries identity: states, alert kinds, flights and counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import queue
import re
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from foundation.clock import Clock
from foundation.errors import ConsentGateError

STATES = ("idle", "presenting", "granted", "staffed_lane", "wrong_flight", "refer", "manual",
          "emergency")
# Count fields the chart knows about (any identifier-like field is accepted and shown too).
# "granted": the gate opened after a face match; "boarded": the traveller then walked through
# on that grant (the daemon records each on its own event, so a turned-back traveller counts
# as granted but not boarded).
DEFAULT_COUNT_FIELDS = ("enrolled", "refused", "withdrawn", "granted", "boarded",
                        "staffed_lane", "wrong_flight", "refer", "tailgating", "override",
                        "presentation_attack")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_TEXT = 200
MAX_ALERTS = 50
SUBSCRIBER_QUEUE = 256
_END: dict[str, Any] = {"type": "end"}  # wakes a consumer whose subscription was ended


class BoardError(ConsentGateError, ValueError):
    """A publish call with an unknown lane, state or a malformed field."""


class CountsStore(Protocol):
    def load(self, day: str) -> dict[str, int]: ...
    def save(self, day: str, counts: dict[str, int]) -> None: ...


def _check_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BoardError(f"{what} must be text")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise BoardError(f"{what} is longer than {MAX_TEXT} characters: shorten it")
    return value or None


class Subscription:
    """One listener's event stream; iterate with `async for` (inside a loop) or call `get()`."""

    def __init__(self, board: LaneBoard, loop: asyncio.AbstractEventLoop | None,
                 maxsize: int) -> None:
        self._board = board
        self._loop = loop
        self._maxsize = maxsize
        self._aqueue: asyncio.Queue[dict[str, Any]] | None = (
            asyncio.Queue(maxsize) if loop is not None else None)
        self._squeue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize)
        self.closed = False

    # -- producer side (any thread, called by the board under its lock) --
    def _deliver(self, event: dict[str, Any]) -> bool:
        """Queue `event`; False when this subscription is dead and should be dropped."""
        if self.closed:
            return False
        if self._loop is None:
            self._put_sync(event)
            return True
        try:
            self._loop.call_soon_threadsafe(self._put_async, event)
        except RuntimeError:  # the loop is closed: the listener has gone
            self.closed = True
            return False
        return True

    def _put_sync(self, event: dict[str, Any]) -> None:
        try:
            self._squeue.put_nowait(event)
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                while True:
                    self._squeue.get_nowait()
            self._squeue.put_nowait(_END if event is _END else self._board.snapshot_event())

    def _end(self) -> None:
        """Close this subscription from any thread and wake its consumer (board lock held)."""
        self.closed = True
        if self._loop is None:
            self._put_sync(_END)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to wake
            self._loop.call_soon_threadsafe(self._put_async, _END)

    def _put_async(self, event: dict[str, Any]) -> None:
        assert self._aqueue is not None
        if event is _END:
            while not self._aqueue.empty():
                self._aqueue.get_nowait()
        elif self._aqueue.full():
            while not self._aqueue.empty():
                self._aqueue.get_nowait()
            event = self._board.snapshot_event()
        self._aqueue.put_nowait(event)

    # -- consumer side --
    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Next event for a thread consumer; None after `timeout` seconds without one, or at
        once when the subscription has been ended (check `closed`)."""
        if self._loop is not None:
            raise RuntimeError("this subscription belongs to an event loop: use `async for`")
        if self.closed and self._squeue.empty():
            return None
        try:
            event = self._squeue.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if event is _END else event

    async def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Next event inside the loop; None after `timeout` seconds without one."""
        if self._aqueue is None:
            raise RuntimeError("this subscription was made outside an event loop: use get()")
        if self.closed and self._aqueue.empty():
            return None
        try:
            event = await asyncio.wait_for(self._aqueue.get(), timeout)
        except TimeoutError:
            return None
        return None if event is _END else event

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self.closed:
            raise StopAsyncIteration
        event = await self.next()
        if event is None:  # ended while waiting
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        self.closed = True
        self._board._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LaneBoard:
    """Thread-safe hub of lane states, recent alerts and today's counts."""

    def __init__(self, lanes: Iterable[str], clock: Clock,
                 counts: CountsStore | None = None) -> None:
        lanes = list(lanes)
        if not lanes:
            raise BoardError("the board needs at least one lane: check [lanes] in the settings")
        if len(set(lanes)) != len(lanes):
            raise BoardError("lane names must be unique: check [lanes] in the settings")
        self._clock = clock
        self._lock = threading.RLock()  # re-entered when a full queue resyncs
        now = clock.now()
        self._lanes: dict[str, dict[str, Any]] = {
            lane: {"lane": lane, "state": "idle", "detail": None, "since": now}
            for lane in lanes}
        self._alerts: deque[dict[str, Any]] = deque(maxlen=MAX_ALERTS)
        self._day = self._today(now)
        self._counts: dict[str, int] = dict.fromkeys(DEFAULT_COUNT_FIELDS, 0)
        self._store, self._dirty, self._saved_at = counts, False, 0.0
        if counts is not None:  # today's counts from before a restart
            self._counts.update(counts.load(self._day))
        self._health: dict[str, Any] | None = None  # None: the daemon has said nothing yet
        self._seq = 0
        self._boarding: dict[str, Any] | None = None  # None: nothing said yet (no flight set)
        # which PAD runs (edge.composition.pad_setup); None: nothing said yet
        self._pad: dict[str, Any] | None = None
        self._subscribers: list[Subscription] = []
        self._ended = False

    # ---- publishing (daemon threads) ----
    @property
    def lanes(self) -> list[str]:
        return list(self._lanes)

    def publish_state(self, lane: str, state: str, detail: str | None = None) -> None:
        """Set a lane's state (one of STATES); detail is short plain text without identity."""
        if state not in STATES:
            raise BoardError(f"unknown lane state {state!r}: use one of {', '.join(STATES)}")
        detail = _check_text(detail, "detail")
        with self._lock:
            entry = self._lane(lane)
            now = self._clock.now()
            if entry["state"] != state:
                entry["since"] = now
            entry["state"] = state
            entry["detail"] = detail
            self._emit({"type": "state", **entry})

    def publish_alert(self, lane: str, kind: str, message: str) -> None:
        """Raise an alert on a lane (e.g. kind 'refer', 'tailgating'); never carries identity."""
        if not isinstance(kind, str) or not _NAME.match(kind):
            raise BoardError(f"alert kind {kind!r} must be a short lower-case identifier")
        text = _check_text(message, "alert message")
        if not text:
            raise BoardError("an alert needs a message saying what staff should do")
        with self._lock:
            self._lane(lane)
            self._seq += 1
            alert = {"id": self._seq, "lane": lane, "kind": kind, "message": text,
                     "at": self._clock.now()}
            self._alerts.append(alert)
            self._emit({"type": "alert", **alert}, seq=self._seq)

    def record_count(self, field: str, n: int = 1) -> None:
        """Add `n` to today's count `field` (counts reset when the local date changes)."""
        if not isinstance(field, str) or not _NAME.match(field):
            raise BoardError(f"count field {field!r} must be a short lower-case identifier")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise BoardError("a count increment must be a whole number of 0 or more")
        with self._lock:
            self._roll_day()
            self._counts[field] = self._counts.get(field, 0) + n
            self._dirty = True
            self._emit({"type": "counts", "day": self._day, "counts": dict(self._counts)})
            if self._clock.monotonic() - self._saved_at >= 1.0:
                self.flush()

    def flush(self) -> None:
        """Save today's counts now when they changed (publish_health calls it too)."""
        with self._lock:
            if self._store is None or not self._dirty:
                return
            self._dirty, self._saved_at = False, self._clock.monotonic()
            try:
                self._store.save(self._day, dict(self._counts))
            except ConsentGateError:  # a busy or failing store: try again at the next call
                self._dirty = True

    def publish_health(self, health: dict[str, Any]) -> None:
        """What /healthz knows, for staff: {"live": bool, "problems": [{"what", "state",
        "message"}], ...} (edge.kiosk.board_feed.board_health); emitted only when it changes."""
        problems = health.get("problems") if isinstance(health, dict) else None
        if not isinstance(problems, list) or not isinstance(health.get("live"), bool):
            raise BoardError("health needs live (true/false) and a list of problems")
        for p in problems:
            if not isinstance(p, dict) or not _check_text(p.get("message"), "problem"):
                raise BoardError("each health problem needs a message saying what to do")
        with self._lock:
            if health != self._health:
                self._health = dict(health)
                self._emit({"type": "health", "health": dict(health)})
        self.flush()

    def acknowledge(self, alert_id: int, staff: str) -> dict[str, Any]:
        """Mark a recent alert seen by `staff` (a staff account's name); returns the alert."""
        with self._lock:
            for alert in self._alerts:
                if alert["id"] == alert_id:  # "new": False when it was acknowledged before
                    new = not alert.get("acked_by")
                    if new:
                        alert["acked_by"], alert["acked_at"] = staff[:64], self._clock.now()
                        self._emit({"type": "ack", **{k: alert[k] for k in (
                            "id", "lane", "acked_by", "acked_at")}})
                    return {**alert, "new": new}
        raise BoardError(f"there is no recent alert {alert_id}: it may have scrolled off")

    def publish_pad(self, summary: dict[str, Any]) -> None:
        """Which presentation-attack detection runs: {"active": thermal|visible|none,
        "required", "unknown_policy", "message"} (edge.composition.pad_setup.pad_summary; no
        identity)."""
        active = summary.get("active") if isinstance(summary, dict) else None
        if active not in ("thermal", "visible", "none"):
            raise BoardError("the PAD line needs active = thermal, visible or none")
        text = _check_text(summary.get("message"), "PAD message")
        with self._lock:
            self._pad = {"active": active, "required": bool(summary.get("required")),
                         "unknown_policy": str(summary.get("unknown_policy", ""))[:16],
                         "message": text}
            self._emit({"type": "pad", "pad": dict(self._pad)})

    def publish_boarding(self, summary: dict[str, Any]) -> None:
        """What the gate boards now: {"source", "scopes", "flights", "message"} (no identity)."""
        if not isinstance(summary, dict) or not isinstance(summary.get("flights"), list):
            raise BoardError("boarding needs a summary with a list of flights")
        text = _check_text(summary.get("message"), "boarding message")
        flights = [_check_text(str(f), "flight") for f in summary["flights"][:8]]
        with self._lock:
            self._boarding = {"source": str(summary.get("source", "none"))[:16],
                              "scopes": [str(x)[:16] for x in summary.get("scopes", [])][:8],
                              "flights": flights, "message": text}
            self._emit({"type": "boarding", "boarding": dict(self._boarding)})

    # ---- reading ----
    def snapshot(self) -> dict[str, Any]:
        """Lanes, recent alerts (newest last) and today's counts, as plain JSON-able data."""
        with self._lock:
            self._roll_day()
            return self._snapshot_locked()

    def snapshot_event(self) -> dict[str, Any]:
        with self._lock:
            return {"type": "snapshot", **self._snapshot_locked()}

    def subscribe(self, maxsize: int = SUBSCRIBER_QUEUE) -> Subscription:
        """A new listener. Inside a running event loop it is async-iterable; else use get()."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        sub = Subscription(self, loop, maxsize)
        with self._lock:
            if self._ended:  # the server is stopping: a new stream ends after its snapshot
                sub.closed = True
            else:
                self._subscribers.append(sub)
        return sub

    def end_streams(self) -> int:
        """End every subscription now and refuse new ones (the daemon calls this before it
        stops the web server); returns how many were open. Publishing still works."""
        with self._lock:
            self._ended = True
            subs, self._subscribers = self._subscribers, []
            for sub in subs:
                sub._end()
        return len(subs)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    # ---- internals (lock held) ----
    def _lane(self, lane: str) -> dict[str, Any]:
        try:
            return self._lanes[lane]
        except (KeyError, TypeError):
            raise BoardError(f"unknown lane {lane!r}: the board has "
                             f"{', '.join(self._lanes)}") from None

    def _today(self, now: float) -> str:
        return dt.datetime.fromtimestamp(now).date().isoformat()

    def _roll_day(self) -> None:
        today = self._today(self._clock.now())
        if today != self._day:
            self._day = today
            self._counts = dict.fromkeys(DEFAULT_COUNT_FIELDS, 0)
            self._dirty = True

    def _snapshot_locked(self) -> dict[str, Any]:
        return {"seq": self._seq,
                "lanes": [dict(v) for v in self._lanes.values()],
                "alerts": [dict(a) for a in self._alerts],
                "day": self._day,
                "counts": dict(self._counts),
                "boarding": dict(self._boarding) if self._boarding else None,
                "pad": dict(self._pad) if self._pad else None,
                "health": dict(self._health) if self._health else None}

    def _emit(self, event: dict[str, Any], seq: int | None = None) -> None:
        if seq is None:
            self._seq += 1
            seq = self._seq
        event["seq"] = seq
        alive = []
        for sub in self._subscribers:
            if sub._deliver(dict(event)):
                alive.append(sub)
        self._subscribers = alive

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s is not sub]
