"""The safety state machine of the gate controller: pure, deterministic, no I/O, no clock.

Every input (a command, a sensor pulse, the fire-alarm line, a driver fault, a tick) comes with
the caller's monotonic `now` and returns the effects to carry out: `SetOutput` (gate leaf open
or closed), `SetAlarm` (lane buzzer) and `Emit` (an event for the daemon). The server applies
them; tests call the machine directly and move time by passing larger `now`s.

Per-lane states and their priority, highest first (enforced by `_settle` after every input):

1. `emergency_open` - the fire alarm is active, or was and no staff reset has happened since
   (latched; NFPA 101 egress). Nothing closes a lane while the alarm is active.
2. `fault` - the gate I/O is down; returns to the base state when the driver reconnects.
3. `open` - one live grant: closes after one passage or at its TTL; a daemon grant also closes
   (to `manual`) when heartbeats stop. A supervisor override grant survives heartbeat loss.
4. base: `closed` while the daemon's heartbeat is live, else `manual` (staff operate the gate).

A passage while `closed` is tailgating: a `tailgating` event and the lane's alarm, which only a
staff `reset` silences. Grants are single-use and single-lane: a grant that has left its lane
(passage, TTL, deny, reset, heartbeat loss, alarm, fault), or one holding another lane open,
is refused. A grant id carries its issue time (wire.gate.new_grant_id, the same monotonic clock
as `now`): a grant older than its ttl plus `GRANT_SLACK_MS` (never more than
`MAX_GRANT_AGE_MS`) is refused, and an open lane closes by then at the latest. So the memory
of used grants only needs to hold a grant for `MAX_GRANT_AGE_MS` after its issue: it is bounded
by time, and no number of newer grants can push a used grant out of it while it could still
be taken.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from wire.gate import (
    GRANT_SLACK_MS,
    MAX_GRANT_AGE_MS,
    Ack,
    Command,
    DenyCmd,
    FaultEvent,
    HeartbeatCmd,
    LaneState,
    OpenCmd,
    OverrideCmd,
    PassageEvent,
    ResetCmd,
    StateEvent,
    StatusCmd,
    TailgatingEvent,
    grant_issued_s,
)

S = LaneState
OPEN_STATES = frozenset({S.OPEN, S.EMERGENCY_OPEN})


def max_grant_age_s(ttl_ms: int) -> float:
    """How old (since its issue) a grant with this ttl may be when it opens or holds a lane."""
    return min(ttl_ms + GRANT_SLACK_MS, MAX_GRANT_AGE_MS) / 1000.0


@dataclass(frozen=True)
class SetOutput:
    lane: str
    open: bool


@dataclass(frozen=True)
class SetAlarm:
    lane: str
    on: bool


@dataclass(frozen=True)
class Emit:
    event: PassageEvent | TailgatingEvent | StateEvent | FaultEvent


Effect = SetOutput | SetAlarm | Emit


@dataclass(frozen=True)
class Lane:
    """One lane's safety state (immutable; the machine replaces it on every transition)."""

    state: LaneState
    reason: str
    grant_id: str | None = None
    expires_at: float = 0.0
    staff_grant: bool = False
    alarm: bool = False
    last_grant: str | None = None
    last_grant_at: float = -math.inf

    @property
    def output_open(self) -> bool:
        return self.state in OPEN_STATES

    def to(self, state: LaneState, reason: str) -> Lane:
        """The same lane in another state, with any grant dropped."""
        return replace(self, state=state, reason=reason, grant_id=None, expires_at=0.0,
                       staff_grant=False)


class GateMachine:
    """All lanes of one gate plus the global inputs (fire alarm, daemon heartbeat, I/O health)."""

    def __init__(self, lanes: Iterable[str], *, heartbeat_timeout_s: float = 1.5,
                 override_ttl_ms: int = 10_000, tailgate_window_s: float = 10.0) -> None:
        names = list(lanes)
        if not names or len(set(names)) != len(names):
            raise ValueError("lanes must be a non-empty list of distinct names")
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.override_ttl_ms = override_ttl_ms
        self.tailgate_window_s = tailgate_window_s
        self.lanes: dict[str, Lane] = {
            n: Lane(S.MANUAL, "start: waiting for the daemon's heartbeat") for n in names}
        self.fire_alarm = False
        self.io_ok = True
        self.io_reason = ""
        self.last_heartbeat: float | None = None
        # used or cancelled daemon grants -> issue time, and a heap of (forget at, grant)
        self._used: dict[str, float] = {}
        self._forget: list[tuple[float, str]] = []
        self._committed: dict[str, Lane] = dict(self.lanes)  # what effects were issued for

    # ---- queries -------------------------------------------------------------------------
    def daemon_alive(self, now: float) -> bool:
        return (self.last_heartbeat is not None
                and now - self.last_heartbeat < self.heartbeat_timeout_s)

    def snapshot(self) -> dict[str, LaneState]:
        return {n: lane.state for n, lane in self.lanes.items()}

    def outputs(self) -> dict[str, bool]:
        """Desired gate leaf per lane: True = open."""
        return {n: lane.output_open for n, lane in self.lanes.items()}

    def alarms(self) -> dict[str, bool]:
        return {n: lane.alarm for n, lane in self.lanes.items()}

    def info(self, now: float) -> dict[str, str]:
        """Health summary for the status command (no ids of people, only lanes and flags)."""
        return {
            "fire_alarm": "active" if self.fire_alarm else "clear",
            "io": "ok" if self.io_ok else f"fault: {self.io_reason}",
            "daemon": "alive" if self.daemon_alive(now) else "no heartbeat",
            "lane_alarms": ",".join(n for n, lane in self.lanes.items() if lane.alarm) or "none",
            "used_grants_held": str(len(self._used)),
        }

    def grant_used(self, grant_id: str) -> bool:
        return grant_id in self._used

    # ---- inputs --------------------------------------------------------------------------
    def tick(self, now: float) -> list[Effect]:
        """Time passed: expire grants, notice a lost heartbeat."""
        return self._transact(now, [])

    def command(self, cmd: Command, now: float,
                peer: str | None = "daemon") -> tuple[Ack, list[Effect]]:
        """Apply one command from the authenticated `peer`; the ack says whether it was taken.

        Who may send what is the server's business (it refuses the operator's non-status
        commands); `peer` only goes into the reasons of staff resets and overrides.
        """
        events: list[Emit] = []
        if isinstance(cmd, HeartbeatCmd):
            self.last_heartbeat = now
            effects = self._transact(now, events)
            return Ack(id=cmd.id, cmd=cmd.cmd, ok=True, lanes=self.snapshot()), effects
        if isinstance(cmd, StatusCmd):
            effects = self._transact(now, events)
            return Ack(id=cmd.id, cmd=cmd.cmd, ok=True, lanes=self.snapshot(),
                       info=self.info(now)), effects
        if cmd.lane not in self.lanes:
            return (Ack(id=cmd.id, cmd=cmd.cmd, ok=False, code="unknown_lane",
                        error=f"lane {cmd.lane!r} is not one of this controller's lanes "
                              f"({', '.join(self.lanes)}); check [gate] lanes in settings"),
                    self._transact(now, events))
        self._settle_all(now)  # judge the command against the current truth
        if isinstance(cmd, OpenCmd):
            refusal = self._open(cmd, now)
        elif isinstance(cmd, DenyCmd):
            refusal = self._deny(cmd)
        elif isinstance(cmd, ResetCmd):
            refusal = self._reset(cmd, peer)
        else:
            assert isinstance(cmd, OverrideCmd)
            refusal = self._override(cmd, now, peer)
        effects = self._transact(now, events)
        state = self.lanes[cmd.lane].state
        if refusal is not None:
            code, error = refusal
            return Ack(id=cmd.id, cmd=cmd.cmd, ok=False, state=state, code=code,
                       error=error), effects
        return Ack(id=cmd.id, cmd=cmd.cmd, ok=True, state=state), effects

    def passage(self, lane_id: str, now: float) -> list[Effect]:
        """The lane's passage sensor saw one person go through."""
        events: list[Emit] = []
        if lane_id not in self.lanes:
            return self._transact(now, events)
        self._settle_all(now)
        lane = self.lanes[lane_id]
        if lane.state == S.OPEN:
            assert lane.grant_id is not None
            events.append(Emit(PassageEvent(lane=lane_id, grant_id=lane.grant_id)))
            if not lane.staff_grant:
                self._remember(lane.grant_id)
            self.lanes[lane_id] = replace(lane.to(self._base(now), "passage"),
                                          last_grant=lane.grant_id, last_grant_at=now)
        elif lane.state == S.CLOSED:
            recent = (lane.last_grant if now - lane.last_grant_at <= self.tailgate_window_s
                      else None)
            events.append(Emit(TailgatingEvent(lane=lane_id, grant_id=recent)))
            self.lanes[lane_id] = replace(lane, alarm=True)
        else:  # manual (staff), emergency egress, or a sensor pulse during a fault
            events.append(Emit(PassageEvent(lane=lane_id, grant_id=None)))
        return self._transact(now, events)

    def fire_alarm_input(self, active: bool, now: float) -> list[Effect]:
        """The fire-alarm line changed (the driver reports edges; repeats are harmless)."""
        events: list[Emit] = []
        if active != self.fire_alarm:
            self.fire_alarm = active
            if not active:  # lanes stay latched open; tell the kiosk that a reset may now work
                for n, lane in self.lanes.items():
                    if lane.state == S.EMERGENCY_OPEN:
                        events.append(Emit(StateEvent(
                            lane=n, state=lane.state,
                            reason="fire_alarm_cleared: staff reset closes the lane")))
        return self._transact(now, events)

    def io_fault(self, reason: str, now: float) -> list[Effect]:
        events: list[Emit] = []
        if self.io_ok:
            self.io_ok, self.io_reason = False, reason[:200]
            events.append(Emit(FaultEvent(active=True, reason=self.io_reason)))
        return self._transact(now, events)

    def io_restored(self, now: float) -> list[Effect]:
        events: list[Emit] = []
        if not self.io_ok:
            self.io_ok, self.io_reason = True, ""
            events.append(Emit(FaultEvent(active=False, reason="gate I/O reconnected")))
        return self._transact(now, events)

    # ---- command handlers: return None when accepted, else (code, message) --------------
    def _open(self, cmd: OpenCmd, now: float) -> tuple[str, str] | None:
        lane = self.lanes[cmd.lane]
        if lane.state == S.OPEN and lane.grant_id == cmd.grant_id:
            return None  # a retried open: idempotent, the TTL is not extended
        if self.grant_used(cmd.grant_id):
            return "grant_used", "this grant was already used or cancelled; issue a new one"
        issued = grant_issued_s(cmd.grant_id)
        max_age = max_grant_age_s(cmd.ttl_ms)
        if issued is None or now - issued > max_age:
            return "grant_stale", (f"this grant is older than its ttl plus the slack "
                                   f"({max_age:g} s) or carries no issue time; issue a new one")
        if issued - now > GRANT_SLACK_MS / 1000.0:
            return "grant_future", ("this grant's issue time is ahead of the controller's "
                                    "clock: grants must be made on this box (CLOCK_MONOTONIC)")
        if any(other.grant_id == cmd.grant_id for other in self.lanes.values()):
            return "grant_in_use", "this grant holds another lane open; one grant, one lane"
        if lane.state == S.EMERGENCY_OPEN:
            return "emergency", "lane is emergency_open (fire alarm); grants are not taken"
        if lane.state == S.FAULT:
            return "io_fault", f"gate I/O is down ({self.io_reason}); staff operate the lane"
        if lane.state == S.MANUAL:
            return "manual", "lane is manual: no live heartbeat from the daemon; send heartbeats"
        if lane.state == S.OPEN:
            return "busy", "lane is already open for another grant; wait for it to close"
        if lane.alarm:
            return "alarm_active", "tailgating alarm on this lane: staff must reset it first"
        self.lanes[cmd.lane] = replace(lane, state=S.OPEN, reason="grant",
                                       grant_id=cmd.grant_id, staff_grant=False,
                                       expires_at=min(now + cmd.ttl_ms / 1000.0,
                                                      issued + max_age))
        return None

    def _deny(self, cmd: DenyCmd) -> tuple[str, str] | None:
        lane = self.lanes[cmd.lane]
        if lane.state == S.OPEN and not lane.staff_grant:
            assert lane.grant_id is not None
            self._remember(lane.grant_id)
            self.lanes[cmd.lane] = lane.to(S.CLOSED, "denied")
        return None  # elsewhere deny changes nothing (and never closes an emergency lane)

    def _reset(self, cmd: ResetCmd, peer: str | None) -> tuple[str, str] | None:
        lane = self.lanes[cmd.lane]
        if self.fire_alarm:
            return "fire_alarm_active", "the fire alarm is still active; reset after it clears"
        if lane.state == S.FAULT:
            return "io_fault", (f"gate I/O is down ({self.io_reason}); check the board and "
                                "cable, the lane recovers when it reconnects")
        reason = f"reset by {cmd.actor} (via {peer})"
        if lane.state in OPEN_STATES:
            if lane.grant_id is not None and not lane.staff_grant:
                self._remember(lane.grant_id)
            lane = lane.to(S.CLOSED, reason)  # settle turns it to manual without a daemon
        self.lanes[cmd.lane] = replace(lane, alarm=False, reason=reason)
        return None

    def _override(self, cmd: OverrideCmd, now: float,
                  peer: str | None) -> tuple[str, str] | None:
        lane = self.lanes[cmd.lane]
        reason = f"override {cmd.action} by {cmd.actor} (via {peer})"
        if cmd.action == "open":
            if lane.state == S.EMERGENCY_OPEN:
                return None  # already open
            if lane.state == S.FAULT:
                return "io_fault", f"gate I/O is down ({self.io_reason}); open the gate by hand"
            if lane.grant_id is not None and not lane.staff_grant:
                self._remember(lane.grant_id)
            self.lanes[cmd.lane] = replace(lane, state=S.OPEN, reason=reason,
                                           grant_id=f"staff:{cmd.actor}"[:64], staff_grant=True,
                                           expires_at=now + self.override_ttl_ms / 1000.0)
            return None
        if self.fire_alarm and lane.state == S.EMERGENCY_OPEN:
            return "fire_alarm_active", "the fire alarm is active: lanes stay open"
        if lane.state in OPEN_STATES:
            if lane.grant_id is not None and not lane.staff_grant:
                self._remember(lane.grant_id)
            self.lanes[cmd.lane] = lane.to(S.CLOSED, reason)
        return None

    # ---- internals -----------------------------------------------------------------------
    def _remember(self, grant_id: str) -> None:
        """A daemon grant left its lane: refuse it until it is too old to be taken anyway."""
        if grant_id in self._used:
            return
        issued = grant_issued_s(grant_id)
        if issued is None:  # never taken (the open refuses grants without an issue time)
            return
        self._used[grant_id] = issued
        heapq.heappush(self._forget, (issued + MAX_GRANT_AGE_MS / 1000.0, grant_id))

    def _forget_old(self, now: float) -> None:
        """Drop used grants older than MAX_GRANT_AGE_MS: `_open` refuses them by age."""
        while self._forget and self._forget[0][0] < now:
            _, grant_id = heapq.heappop(self._forget)
            self._used.pop(grant_id, None)

    def _base(self, now: float) -> LaneState:
        return S.CLOSED if self.daemon_alive(now) else S.MANUAL

    def _settle(self, lane: Lane, now: float) -> Lane:
        if self.fire_alarm:
            return lane if lane.state == S.EMERGENCY_OPEN else lane.to(S.EMERGENCY_OPEN,
                                                                         "fire_alarm")
        if lane.state == S.EMERGENCY_OPEN:
            return lane  # latched until a staff reset
        if not self.io_ok:
            return lane if lane.state == S.FAULT else lane.to(S.FAULT, "io_fault")
        alive = self.daemon_alive(now)
        if lane.state == S.FAULT:
            return lane.to(self._base(now), "io_recovered")
        if lane.state == S.OPEN:
            if now >= lane.expires_at:
                return lane.to(self._base(now), "grant_expired")
            if not alive and not lane.staff_grant:
                return lane.to(S.MANUAL, "heartbeat_lost")
            return lane
        if lane.state == S.CLOSED and not alive:
            return lane.to(S.MANUAL, "heartbeat_lost")
        if lane.state == S.MANUAL and alive:
            return lane.to(S.CLOSED, "daemon_heartbeat")
        return lane

    def _settle_all(self, now: float) -> None:
        for n, lane in self.lanes.items():
            settled = self._settle(lane, now)
            if settled is not lane:
                self.lanes[n] = settled

    def _transact(self, now: float, events: list[Emit]) -> list[Effect]:
        """Settle every lane and turn the difference since the last transaction into effects."""
        before = self._committed
        self._forget_old(now)
        self._settle_all(now)
        effects: list[Effect] = list(events)
        for n, lane in self.lanes.items():
            old = before[n]
            if old.grant_id is not None and not old.staff_grant and lane.grant_id != old.grant_id:
                self._remember(old.grant_id)  # a grant opens a lane once: expired, lost, used
            if lane.output_open != old.output_open:
                effects.append(SetOutput(n, lane.output_open))
            if lane.alarm != old.alarm:
                effects.append(SetAlarm(n, lane.alarm))
            if lane.state != old.state:
                effects.append(Emit(StateEvent(lane=n, state=lane.state, reason=lane.reason)))
        self._committed = dict(self.lanes)
        return effects
