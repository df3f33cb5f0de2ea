"""Hypothesis stateful tests of the gate safety machine over random command/sensor/alarm runs.

Properties (from the issue): never two passages on one grant without an alarm; never closed
during an active fire alarm; never open without a live grant or an alarm. The gate outputs are
rebuilt from the effect stream alone, so the effects the server applies are what is checked.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gate_controller.safety import Emit, GateMachine, SetAlarm, SetOutput
from wire.gate import (
    DenyCmd,
    HeartbeatCmd,
    LaneState,
    OpenCmd,
    OverrideCmd,
    PassageEvent,
    ResetCmd,
    StateEvent,
    TailgatingEvent,
    grant_issued_s,
    new_grant_id,
)

LANES = ["A", "B"]
lanes = st.sampled_from(LANES)
# a grant: one of the three issued last (replays, reuse), or a fresh one issued now
grants = st.sampled_from(["new", 0, 1, 2])


class GateRun(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.m = GateMachine(LANES, heartbeat_timeout_s=1.5, override_ttl_ms=3000,
                             tailgate_window_s=5.0)
        self.now = 0.0
        self.outputs = dict.fromkeys(LANES, False)  # what the hardware was told
        self.alarms = dict.fromkeys(LANES, False)
        self.passages: Counter[str] = Counter()  # daemon grant -> passage events
        self.tailgates: Counter[str] = Counter()  # lane -> tailgating events
        self.live_grants: dict[str, tuple[str, float]] = {}  # lane -> acked grant, expiry
        self.state_of = dict.fromkeys(LANES, LaneState.MANUAL)  # from state events only
        self.issued: list[str] = [new_grant_id(0.0)]  # grant ids carry the issue time

    def _grant(self, pick: str | int) -> str:
        if pick == "new":
            self.issued.append(new_grant_id(self.now))
            return self.issued[-1]
        return self.issued[-1 - min(int(pick), len(self.issued) - 1)]

    def _apply(self, effects) -> None:
        for e in effects:
            if isinstance(e, SetOutput):
                self.outputs[e.lane] = e.open
            elif isinstance(e, SetAlarm):
                self.alarms[e.lane] = e.on
            elif isinstance(e, Emit):
                ev = e.event
                if isinstance(ev, PassageEvent) and ev.grant_id and \
                        not ev.grant_id.startswith("staff:"):
                    self.passages[ev.grant_id] += 1
                elif isinstance(ev, TailgatingEvent):
                    self.tailgates[ev.lane] += 1
                elif isinstance(ev, StateEvent):
                    self.state_of[ev.lane] = ev.state

    @rule(dt=st.floats(0.0, 2.5))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self._apply(self.m.tick(self.now))

    @rule()
    def heartbeat(self) -> None:
        self._apply(self.m.command(HeartbeatCmd(), self.now)[1])

    @rule(lane=lanes, pick=grants, ttl=st.integers(100, 4000))
    def open(self, lane: str, pick: str | int, ttl: int) -> None:
        grant = self._grant(pick)
        ack, effects = self.m.command(OpenCmd(lane=lane, grant_id=grant, ttl_ms=ttl), self.now)
        self._apply(effects)
        if ack.ok:
            self.live_grants.setdefault(lane, (grant, self.now + ttl / 1000))
            if self.live_grants[lane][0] != grant:
                self.live_grants[lane] = (grant, self.now + ttl / 1000)
            issued = grant_issued_s(grant)
            assert issued is not None and self.now - issued <= ttl / 1000 + 2.0, "stale taken"

    @rule(lane=lanes, pick=grants)
    def boarding(self, lane: str, pick: str | int) -> None:
        """The common case in one step: heartbeat, open, one person walks through."""
        self.heartbeat()
        self.open(lane, pick, 3000)
        self.passage(lane)

    @rule(lane=lanes)
    def deny(self, lane: str) -> None:
        self._apply(self.m.command(DenyCmd(lane=lane), self.now)[1])

    @rule(lane=lanes)
    def reset(self, lane: str) -> None:
        self._apply(self.m.command(ResetCmd(lane=lane, reason="r", actor="s"), self.now)[1])

    @rule(lane=lanes, action=st.sampled_from(["open", "close"]))
    def override(self, lane: str, action: str) -> None:
        cmd = OverrideCmd(lane=lane, action=action, reason="r", actor="sup")
        self._apply(self.m.command(cmd, self.now)[1])

    @rule(lane=lanes)
    def passage(self, lane: str) -> None:
        before = self.m.lanes[lane]
        # judge against the state the machine will act on (time-based settling first)
        self._apply(self.m.tick(self.now))
        before = self.m.lanes[lane]
        tailgates = self.tailgates[lane]
        self._apply(self.m.passage(lane, self.now))
        if before.state == LaneState.CLOSED:
            assert self.tailgates[lane] == tailgates + 1
            assert self.alarms[lane], "a passage through a closed lane must sound the alarm"

    @rule(active=st.booleans())
    def fire(self, active: bool) -> None:
        self._apply(self.m.fire_alarm_input(active, self.now))

    @rule()
    def io_fault(self) -> None:
        self._apply(self.m.io_fault("cable", self.now))

    @precondition(lambda self: not self.m.io_ok)
    @rule()
    def io_restored(self) -> None:
        self._apply(self.m.io_restored(self.now))

    @invariant()
    def never_two_passages_on_one_grant(self) -> None:
        assert all(n <= 1 for n in self.passages.values()), self.passages

    @invariant()
    def never_closed_during_fire_alarm(self) -> None:
        if self.m.fire_alarm:
            assert all(self.outputs.values()), self.outputs
            assert all(s == LaneState.EMERGENCY_OPEN for s in self.state_of.values())

    @invariant()
    def never_open_without_live_grant_or_alarm(self) -> None:
        for lane, is_open in self.outputs.items():
            if not is_open:
                continue
            view = self.m.lanes[lane]
            if view.state == LaneState.EMERGENCY_OPEN:
                continue  # fire alarm active or latched
            assert view.state == LaneState.OPEN and view.grant_id is not None
            assert view.expires_at > self.now, "open after the grant's TTL"
            if not view.staff_grant:
                grant, expiry = self.live_grants[lane]
                assert grant == view.grant_id and expiry > self.now
                assert self.m.daemon_alive(self.now), "daemon grant open without heartbeat"
                assert self.passages[grant] == 0

    @invariant()
    def outputs_match_machine(self) -> None:
        assert self.outputs == self.m.outputs()
        assert self.alarms == self.m.alarms()
        assert self.state_of == self.m.snapshot()


TestGateRun = GateRun.TestCase
TestGateRun.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
