"""Lane state machine: every transition, timeouts, one decision per track, manual mode."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.decisions.events import DecisionEvent
from edge.decisions.lanes import DenyGate, LaneMachine, LaneRules, LaneState, MarkBoarded, OpenGate
from foundation.clock import FakeClock


def machine(clock: FakeClock, **rules) -> LaneMachine:
    ids = (f"g{i}" for i in itertools.count(1))
    return LaneMachine("A", LaneRules(**rules), clock, new_grant_id=lambda: next(ids))


def kinds(actions) -> list[str]:
    return [a.kind.value for a in actions if isinstance(a, DecisionEvent)]


def test_match_grants_and_passage_boards(fake_clock: FakeClock) -> None:
    m = machine(fake_clock)
    assert kinds(m.present(7)) == ["presented"]
    assert m.state is LaneState.PRESENTING and m.wants_match
    out = m.match(7, "c1")
    assert OpenGate("A", "g1", 8000) in out and kinds(out) == ["granted"]
    assert m.state is LaneState.GRANTED
    out = m.passage("g1")
    assert out[0] == MarkBoarded("c1") and kinds(out) == ["passage"]
    assert m.state is LaneState.IDLE


def test_not_matched_denies_and_holds_then_idle(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, hold_s=2.0)
    m.present(1)
    out = m.match(1, None, "below threshold")
    assert DenyGate("A") in out and kinds(out) == ["not_matched"]
    assert m.state is LaneState.NOT_MATCHED
    fake_clock.advance(1.0)
    assert m.tick() == [] and m.state is LaneState.NOT_MATCHED
    fake_clock.advance(1.5)
    m.tick()
    assert m.state is LaneState.IDLE


def test_one_decision_per_track(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, hold_s=0.5)
    m.present(1)
    m.match(1, None)
    fake_clock.advance(1)
    m.tick()
    assert m.present(1) == [] and m.state is LaneState.IDLE
    assert m.match(1, "c1") == []
    assert kinds(m.present(2)) == ["presented"]


def test_second_match_for_same_track_ignored(fake_clock: FakeClock) -> None:
    m = machine(fake_clock)
    m.present(1)
    m.match(1, "c1")
    assert m.match(1, "c1") == []
    assert m.match(2, "c2") == []


def test_presenting_timeout(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, presenting_timeout_s=2.0)
    m.present(3)
    fake_clock.advance(2.5)
    assert kinds(m.tick()) == ["timeout"]
    assert m.state is LaneState.IDLE and m.decided(3)


def test_unused_grant_times_out(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, grant_ttl_ms=1000)
    m.present(1)
    m.match(1, "c1")
    fake_clock.advance(1.2)
    assert kinds(m.tick()) == ["timeout"]
    assert m.state is LaneState.IDLE
    # a late passage on that grant still marks the traveller boarded
    assert MarkBoarded("c1") in m.passage("g1")


def test_track_lost_while_presenting(fake_clock: FakeClock) -> None:
    m = machine(fake_clock)
    m.present(4)
    assert kinds(m.track_lost(5)) == []
    assert kinds(m.track_lost(4)) == ["timeout"]
    assert m.state is LaneState.IDLE


def test_refer_alerts_but_does_not_block_by_default(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, thermal_enabled=True)
    m.present(1)
    out = m.thermal(1, "refer", "canthus high")
    assert kinds(out) == ["referred"]
    assert all(isinstance(a, DecisionEvent) for a in out)  # no gate action, no identity
    out = m.match(1, "c1")
    assert kinds(out) == ["granted"]
    assert m.thermal(1, "refer") == []  # counted once per track


def test_refer_blocks_when_settings_say_so(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, thermal_enabled=True, refer_blocks_boarding=True)
    m.present(1)
    assert m.match(1, "c1") == []  # waits for the thermal decision
    out = m.thermal(1, "refer")
    assert kinds(out) == ["referred", "matched_held"] and DenyGate("A") in out
    assert m.state is LaneState.REFER
    assert not any(isinstance(a, OpenGate) for a in out)


def test_blocking_thermal_pass_grants(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, thermal_enabled=True, refer_blocks_boarding=True)
    m.present(1)
    m.thermal(1, "pass")
    out = m.match(1, "c1")
    assert kinds(out) == ["granted"]


def test_blocking_thermal_missing_goes_to_staff_after_timeout(fake_clock: FakeClock) -> None:
    m = machine(fake_clock, thermal_enabled=True, refer_blocks_boarding=True,
                presenting_timeout_s=1.0)
    m.present(1)
    m.match(1, "c1")
    fake_clock.advance(1.5)
    out = m.tick()
    assert kinds(out) == ["matched_held"] and DenyGate("A") in out


def test_manual_mode_sends_no_grants(fake_clock: FakeClock) -> None:
    m = machine(fake_clock)
    m.present(1)
    assert kinds(m.gate_down("no heartbeat ack")) == ["manual"]
    assert m.state is LaneState.MANUAL
    assert m.present(2) == [] and m.match(2, "c2") == []
    assert m.gate_down("again") == []
    assert kinds(m.gate_up()) == ["restored"]
    assert kinds(m.present(2)) == ["presented"]


def test_manual_voids_pending_grants(fake_clock: FakeClock) -> None:
    m = machine(fake_clock)
    m.present(1)
    m.match(1, "c1")
    m.gate_down("controller gone")
    assert not any(isinstance(a, MarkBoarded) for a in m.passage("g1"))


def test_tailgating_event(fake_clock: FakeClock) -> None:
    m = machine(fake_clock)
    assert kinds(m.tailgating()) == ["tailgating"]


def test_unknown_thermal_status_rejected(fake_clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="unknown thermal status"):
        machine(fake_clock).thermal(1, "hot")


def apply(m: LaneMachine, op: str, n: int) -> list:
    if op == "present":
        return m.present(n)
    if op in ("match", "nomatch"):
        return m.match(n, f"c{n}" if op == "match" else None)
    if op == "thermal":
        return m.thermal(n, "refer" if n % 2 else "pass")
    if op == "passage":
        return m.passage(f"g{n}")
    if op == "down":
        return m.gate_down("x")
    if op == "lost":
        return m.track_lost(n)
    if op == "handover":
        return m.track_lost(n, successor=n + 1)
    return {"up": m.gate_up, "tick": m.tick}[op]()


_OPS = st.lists(st.tuples(st.sampled_from(["present", "match", "nomatch", "thermal", "passage",
                                           "down", "up", "tick", "lost",
                                           "handover"]),
                          st.integers(1, 4), st.floats(0, 3)), max_size=60)


@given(_OPS, st.booleans())
def test_invariants_under_random_sequences(ops, blocks) -> None:
    clock = FakeClock()
    m = machine(clock, thermal_enabled=True, refer_blocks_boarding=blocks,
                presenting_timeout_s=2.0, grant_ttl_ms=1500, hold_s=1.0)
    opened_for: set[int] = set()
    matched: set[str] = set()
    referred: set[int] = set()
    for op, n, dt in ops:
        clock.advance(dt)
        was_manual = m.state is LaneState.MANUAL
        if op == "match" and m.wants_match and n == m.track_id:
            matched.add(f"c{n}")
        if op == "thermal" and n % 2:
            referred.add(n)
        out = apply(m, op, n)
        for a in out:
            if isinstance(a, OpenGate):
                track = m.track_id
                assert not was_manual, "a grant was sent while the lane was manual"
                assert track not in opened_for, "two grants for one track"
                assert not (blocks and track in referred), "blocking refer still opened"
                opened_for.add(track)
            if isinstance(a, MarkBoarded):
                assert a.consent_id in matched, "boarded someone who never matched"
        assert m.state in LaneState


def test_successor_track_takes_over_without_new_event(fake_clock: FakeClock) -> None:
    m = machine(fake_clock)
    m.present(1)
    assert m.track_lost(1, successor=2) == []
    assert m.state is LaneState.PRESENTING and m.track_id == 2
    assert kinds(m.match(2, "c1")) == ["granted"]


def test_starts_manual_until_gate_answers(fake_clock: FakeClock) -> None:
    m = LaneMachine("A", LaneRules(), fake_clock, start_manual=True)
    assert m.state is LaneState.MANUAL and m.present(1) == []
    assert kinds(m.gate_up()) == ["restored"]


def test_wrong_flight_traveller_is_told_and_sent_to_the_staffed_lane(fake_clock: FakeClock
                                                                     ) -> None:
    """A traveller enrolled for another flight (match reason `wrong_flight`): no grant, a
    `wrong_flight` decision and lane state, counted as a staffed-lane decision too."""
    from edge.decisions.events import COUNTER_FIELDS, Kind

    m = machine(fake_clock, hold_s=2.0)
    m.present(1)
    out = m.match(1, None, "wrong_flight")
    assert DenyGate("A") in out and kinds(out) == ["wrong_flight"]
    assert not any(isinstance(a, OpenGate) for a in out)
    event = next(a for a in out if isinstance(a, DecisionEvent))
    assert event.reason == "not this flight: staffed lane" and event.state == "wrong_flight"
    assert m.state is LaneState.WRONG_FLIGHT and not m.wants_match
    assert COUNTER_FIELDS[Kind.WRONG_FLIGHT] == ("not_matched", "wrong_flight")
    assert m.match(1, "c1") == []  # one decision per track
    fake_clock.advance(2.5)
    m.tick()
    assert m.state is LaneState.IDLE


def test_match_due_marks_the_last_moment_before_the_presenting_timeout(fake_clock: FakeClock
                                                                      ) -> None:
    m = machine(fake_clock, presenting_timeout_s=2.0)
    m.present(1)
    assert not m.match_due
    fake_clock.advance(2.1)
    assert m.match_due
    assert kinds(m.match(1, "c1")) == ["granted"] and not m.match_due
