"""The gate safety machine, exhaustively: every situation x every input, against a table.

Rows are situations reached through the machine's public inputs only; columns are inputs. A
cell is the expected state of lane A afterwards, with `!code` when the command must be refused.
After every cell the global safety invariants are checked on both lanes.
"""

from __future__ import annotations

import pytest

from gate_controller.safety import Emit, GateMachine, SetAlarm, SetOutput
from wire.gate import (
    GRANT_SLACK_MS,
    MAX_GRANT_AGE_MS,
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
    new_grant_id,
)

T0 = 1000.0
S = LaneState
G1 = new_grant_id(T0)  # grants issued at T0 (the machine's monotonic clock)
G9 = new_grant_id(T0)


def machine() -> GateMachine:
    return GateMachine(["A", "B"], heartbeat_timeout_s=1.5, override_ttl_ms=10_000,
                       tailgate_window_s=10.0)


def _cmd(m: GateMachine, cmd, now: float = T0):
    ack, effects = m.command(cmd, now)
    return ack, effects


def reach(name: str) -> GateMachine:
    """A machine in the named situation at time T0, built from public inputs only."""
    m = machine()
    hb = name not in ("manual", "staff_open_manual", "fault_manual")
    if hb:
        _cmd(m, HeartbeatCmd())
    if name == "open":
        assert _cmd(m, OpenCmd(lane="A", grant_id=G1, ttl_ms=5000))[0].ok
    elif name in ("staff_open", "staff_open_manual"):
        assert _cmd(m, OverrideCmd(lane="A", action="open", reason="r", actor="sup1"))[0].ok
    elif name == "alarm_closed":
        assert _cmd(m, OpenCmd(lane="A", grant_id=G1, ttl_ms=5000))[0].ok
        m.passage("A", T0)
        m.passage("A", T0)
        assert m.lanes["A"].alarm
    elif name in ("emergency_active", "emergency_latched"):
        m.fire_alarm_input(True, T0)
        if name == "emergency_latched":
            m.fire_alarm_input(False, T0)
    elif name in ("fault", "fault_manual"):
        m.io_fault("cable", T0)
    return m


# Cells: C closed, O open, M manual, E emergency_open, F fault; "!code" = refused with code.
COMMAND_TABLE = """
situation          hb   open      deny  reset    ovo    ovc
manual             C    M!manual  M     M        O      M
closed             C    O         C     C        O      C
open               O    O!busy    C     C        O      C
staff_open         O    O!busy    O     C        O      C
staff_open_manual  O    O!busy    O     M        O      M
alarm_closed       C    C!alarm   C     C        O      C
emergency_active   E    E!fire    E     E!fire   E      E!fire
emergency_latched  E    E!fire    E     C        E      C
fault              F    F!io      F     F!io     F!io   F
fault_manual       F    F!io      F     F!io     F!io   F
"""

INPUT_TABLE = """
situation          pass  fire1  fire0  fault  ok   t1   t2   t6
manual             M     E      M      F      M    M    M    M
closed             C     E      C      F      C    C    M    M
open               C     E      O      F      O    O    M    M
staff_open         C     E      O      F      O    O    O    O
staff_open_manual  M     E      O      F      O    O    O    O
alarm_closed       C     E      C      F      C    C    M    M
emergency_active   E     E      E      E      E    E    E    E
emergency_latched  E     E      E      E      E    E    E    E
fault              F     E      F      F      C    F    F    F
fault_manual       F     E      F      F      M    F    F    F
"""

NAMES = {"E": S.EMERGENCY_OPEN, "O": S.OPEN, "C": S.CLOSED, "M": S.MANUAL, "F": S.FAULT}
CODES = {"manual": "manual", "busy": "busy", "alarm": "alarm_active", "io": "io_fault",
         "fire": "fire_alarm_active", "": ""}
# an open refused in an emergency says so ("emergency"), other commands name the fire alarm
OPEN_CODES = {**CODES, "fire": "emergency"}


def _rows() -> list[tuple[str, str, str]]:
    cases = []
    situations = []
    for table in (COMMAND_TABLE, INPUT_TABLE):
        lines = [ln.split() for ln in table.strip().splitlines()]
        header, body = lines[0][1:], lines[1:]
        situations.append([row[0] for row in body])
        for row in body:
            assert len(row) == len(header) + 1, row[0]
            cases += [(row[0], stim, cell) for stim, cell in zip(header, row[1:], strict=True)]
    assert situations[0] == situations[1]
    assert len(cases) == len(situations[0]) * 14  # every situation x every input
    return cases


def apply(m: GateMachine, stim: str):
    """Apply one stimulus to lane A at T0 (ticks move time); returns (ack or None, effects)."""
    now = T0
    if stim == "hb":
        return _cmd(m, HeartbeatCmd())
    if stim == "open":
        return _cmd(m, OpenCmd(lane="A", grant_id=G9, ttl_ms=5000))
    if stim == "deny":
        return _cmd(m, DenyCmd(lane="A"))
    if stim == "reset":
        return _cmd(m, ResetCmd(lane="A", reason="checked", actor="sup1"))
    if stim == "ovo":
        return _cmd(m, OverrideCmd(lane="A", action="open", reason="r", actor="sup1"))
    if stim == "ovc":
        return _cmd(m, OverrideCmd(lane="A", action="close", reason="r", actor="sup1"))
    if stim == "pass":
        return None, m.passage("A", now)
    if stim in ("fire1", "fire0"):
        return None, m.fire_alarm_input(stim == "fire1", now)
    if stim == "fault":
        return None, m.io_fault("cable", now)
    if stim == "ok":
        return None, m.io_restored(now)
    return None, m.tick(now + {"t1": 1.0, "t2": 2.0, "t6": 6.0}[stim])


def check_invariants(m: GateMachine, now: float) -> None:
    for name, lane in m.lanes.items():
        if m.fire_alarm:
            assert lane.state == S.EMERGENCY_OPEN, f"{name} not open during a fire alarm"
        if lane.state == S.OPEN:
            assert lane.grant_id is not None and lane.expires_at > now, f"{name} open, no grant"
            assert lane.staff_grant or not m.grant_used(lane.grant_id)
        assert lane.output_open == (lane.state in (S.OPEN, S.EMERGENCY_OPEN))
        if not m.fire_alarm and lane.state != S.EMERGENCY_OPEN:
            if not m.io_ok:
                assert lane.state == S.FAULT
            elif lane.state != S.OPEN:
                want = S.CLOSED if m.daemon_alive(now) else S.MANUAL
                assert lane.state == want, f"{name} is {lane.state}, base is {want}"
            elif not m.daemon_alive(now):
                assert lane.staff_grant, f"{name}: daemon grant open without a daemon"


@pytest.mark.parametrize(("situation", "stim", "cell"), _rows())
def test_transition_table(situation: str, stim: str, cell: str) -> None:
    m = reach(situation)
    check_invariants(m, T0)
    want_state, _, short = cell.partition("!")
    code = (OPEN_CODES if stim == "open" else CODES)[short]
    ack, effects = apply(m, stim)
    assert m.lanes["A"].state == NAMES[want_state]
    if ack is not None:
        assert ack.ok == (code == ""), ack
        assert (ack.code or "") == code
        if not ack.ok:
            assert ack.error  # says what to do
    now = T0 + {"t1": 1.0, "t2": 2.0, "t6": 6.0}.get(stim, 0.0)
    check_invariants(m, now)
    # the effects stream agrees with the machine: outputs and state events
    for eff in effects:
        if isinstance(eff, SetOutput):
            assert m.outputs()[eff.lane] == eff.open
        if isinstance(eff, SetAlarm):
            assert m.alarms()[eff.lane] == eff.on


def test_refused_command_changes_nothing() -> None:
    for situation in ("manual", "open", "alarm_closed", "emergency_active", "fault"):
        m = reach(situation)
        before = dict(m.lanes)
        ack, effects = apply(m, "open")
        assert not ack.ok
        assert m.lanes == before and effects == []


def test_passage_on_open_grant_then_second_passage_is_tailgating() -> None:
    m = reach("open")
    effects = m.passage("A", T0 + 0.5)
    kinds = [type(e.event) for e in effects if isinstance(e, Emit)]
    assert kinds[0] is PassageEvent and effects[0].event.grant_id == G1
    assert SetOutput("A", False) in effects
    effects = m.passage("A", T0 + 0.7)
    tail = [e.event for e in effects if isinstance(e, Emit)]
    assert isinstance(tail[0], TailgatingEvent) and tail[0].grant_id == G1
    assert SetAlarm("A", True) in effects
    # the used grant can never open the gate again
    ack, _ = m.command(ResetCmd(lane="A", reason="ok", actor="s"), T0 + 0.8)
    assert ack.ok
    ack, _ = m.command(OpenCmd(lane="A", grant_id=G1, ttl_ms=5000), T0 + 0.9)
    assert not ack.ok and ack.code == "grant_used"


def test_tailgating_long_after_a_grant_has_no_grant_id() -> None:
    m = reach("closed")
    [event] = [e.event for e in m.passage("A", T0 + 1) if isinstance(e, Emit)
               and isinstance(e.event, TailgatingEvent)]
    assert event.grant_id is None


def test_open_is_idempotent_and_ttl_not_extended() -> None:
    m = reach("open")
    for t in (1.0, 2.0, 3.0, 4.0):
        m.command(HeartbeatCmd(), T0 + t)
    ack, effects = m.command(OpenCmd(lane="A", grant_id=G1, ttl_ms=5000), T0 + 4)
    assert ack.ok and effects == []
    m.command(HeartbeatCmd(), T0 + 4.9)
    m.tick(T0 + 5.0)
    assert m.lanes["A"].state == S.CLOSED and m.lanes["A"].reason == "grant_expired"


def test_heartbeat_loss_goes_manual_at_the_timeout() -> None:
    m = reach("closed")
    m.tick(T0 + 1.49)
    assert m.snapshot() == {"A": S.CLOSED, "B": S.CLOSED}
    effects = m.tick(T0 + 1.5)
    assert m.snapshot() == {"A": S.MANUAL, "B": S.MANUAL}
    reasons = {e.event.reason for e in effects if isinstance(e, Emit)}
    assert reasons == {"heartbeat_lost"}


def test_fire_alarm_opens_every_lane_and_latches_until_reset() -> None:
    m = reach("open")
    effects = m.fire_alarm_input(True, T0)
    assert SetOutput("A", True) not in effects  # A was already open: no duplicate
    assert SetOutput("B", True) in effects
    assert m.snapshot() == {"A": S.EMERGENCY_OPEN, "B": S.EMERGENCY_OPEN}
    effects = m.fire_alarm_input(False, T0 + 1)
    assert all(isinstance(e, Emit) and isinstance(e.event, StateEvent) for e in effects)
    assert m.outputs() == {"A": True, "B": True}
    m.command(HeartbeatCmd(), T0 + 1)
    assert m.command(ResetCmd(lane="A", reason="drill over", actor="s1"), T0 + 1)[0].ok
    assert m.snapshot() == {"A": S.CLOSED, "B": S.EMERGENCY_OPEN}


def test_io_fault_and_recovery_events() -> None:
    m = reach("closed")
    effects = m.io_fault("port vanished", T0)
    faults = [e.event for e in effects if isinstance(e, Emit) and isinstance(e.event, FaultEvent)]
    assert len(faults) == 1 and faults[0].active
    assert m.io_fault("again", T0) == []  # reported once
    m.io_restored(T0 + 0.1)
    assert m.snapshot() == {"A": S.CLOSED, "B": S.CLOSED}


def test_unknown_lane_is_refused_and_status_reports_health() -> None:
    m = reach("closed")
    ack, effects = m.command(OpenCmd(lane="Z", grant_id=G9, ttl_ms=1000), T0)
    assert not ack.ok and ack.code == "unknown_lane" and "A, B" in (ack.error or "")
    assert effects == []
    ack, _ = m.command(StatusCmd(), T0)
    assert ack.lanes == {"A": S.CLOSED, "B": S.CLOSED}
    assert ack.info == {"fire_alarm": "clear", "io": "ok", "daemon": "alive",
                        "lane_alarms": "none", "used_grants_held": "0"}


def test_deny_cancels_the_grant() -> None:
    m = reach("open")
    assert m.command(DenyCmd(lane="A"), T0)[0].ok
    ack, _ = m.command(OpenCmd(lane="A", grant_id=G1, ttl_ms=1000), T0)
    assert ack.code == "grant_used"


def _board(m: GateMachine, grant: str, now: float) -> None:
    m.command(HeartbeatCmd(), now)
    assert m.command(OpenCmd(lane="A", grant_id=grant, ttl_ms=1000), now)[0].ok
    m.passage("A", now)


def test_used_grant_never_reopens_however_many_grants_follow() -> None:
    """The old memory forgot a used grant after 4,096 newer ones; now only time forgets."""
    m = machine()
    _board(m, G1, T0)
    now = T0
    for _ in range(5000):  # more than the old fixed-size memory, all within the max age
        now += 0.001
        _board(m, new_grant_id(now), now)
    m.command(HeartbeatCmd(), now)
    ack, _ = m.command(OpenCmd(lane="A", grant_id=G1, ttl_ms=1000), now)
    assert not ack.ok and ack.code == "grant_used"
    assert ack.error and m.snapshot()["A"] == S.CLOSED


def test_used_grant_memory_is_bounded_by_time_not_count() -> None:
    m = machine()
    _board(m, G1, T0)
    assert m.grant_used(G1)
    late = T0 + MAX_GRANT_AGE_MS / 1000.0 + 0.01
    m.command(HeartbeatCmd(), late)
    assert not m.grant_used(G1) and m.info(late)["used_grants_held"] == "0"  # forgotten ...
    for ttl in (1000, 120_000):  # ... and refused by age, whatever ttl a replay claims
        ack, _ = m.command(OpenCmd(lane="A", grant_id=G1, ttl_ms=ttl), late)
        assert not ack.ok and ack.code == "grant_stale"
    assert m.snapshot()["A"] == S.CLOSED


@pytest.mark.parametrize(("age_s", "ttl_ms", "ok"), [
    (0.0, 1000, True), (2.9, 1000, True), (3.1, 1000, False),  # ttl + 2 s slack
    (60.0, 60_000, True), (121.9, 120_000, True), (122.1, 120_000, False),  # the cap
])
def test_grant_older_than_ttl_plus_slack_is_stale(age_s: float, ttl_ms: int, ok: bool) -> None:
    m = reach("closed")
    grant = new_grant_id(T0 - age_s)
    ack, _ = m.command(OpenCmd(lane="A", grant_id=grant, ttl_ms=ttl_ms), T0)
    assert ack.ok == ok and (ok or ack.code == "grant_stale")
    if ok:  # the lane closes no later than issue + ttl + slack
        assert m.lanes["A"].expires_at <= T0 - age_s + (ttl_ms + GRANT_SLACK_MS) / 1000 + 1e-6


def test_grant_from_the_future_is_refused() -> None:
    m = reach("closed")
    ack, _ = m.command(OpenCmd(lane="A", grant_id=new_grant_id(T0 + 60), ttl_ms=1000), T0)
    assert not ack.ok and ack.code == "grant_future"
    assert m.command(OpenCmd(lane="A", grant_id=new_grant_id(T0 + 1), ttl_ms=1000), T0)[0].ok


def test_staff_reason_names_the_peer_and_the_staff_account() -> None:
    m = reach("closed")
    m.command(OverrideCmd(lane="A", action="open", reason="r", actor="sup1"), T0, peer="daemon")
    assert m.lanes["A"].reason == "override open by sup1 (via daemon)"


def test_machine_needs_distinct_lanes() -> None:
    with pytest.raises(ValueError):
        GateMachine(["A", "A"])
    with pytest.raises(ValueError):
        GateMachine([])


def test_one_grant_never_holds_two_lanes() -> None:
    m = reach("open")  # A open on g1
    ack, effects = m.command(OpenCmd(lane="B", grant_id=G1, ttl_ms=5000), T0)
    assert not ack.ok and ack.code == "grant_in_use" and effects == []
    m.passage("A", T0)
    ack, _ = m.command(OpenCmd(lane="B", grant_id=G1, ttl_ms=5000), T0)
    assert ack.code == "grant_used"
