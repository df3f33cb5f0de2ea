"""PAD fusion over the presenting frames (edge.decisions.liveness) and the lane machine's PAD
step: M of the last N measured frames live and no confident attack -> live; an attack majority
-> attack; unknown frames are never fused; the machine never grants before PAD let the match go
on, and never on input whose every window is an attack majority (Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.decisions.events import Kind
from edge.decisions.lanes import DenyGate, LaneMachine, LaneRules, LaneState, OpenGate
from edge.decisions.liveness import INCONCLUSIVE, LivenessFusion, LivenessRules
from edge.decisions.pad_gate import PadGate, verdict_of
from edge.screening.pad import PadResult
from foundation.clock import FakeClock
from foundation.settings import SettingsError, parse_settings
from foundation.settings_pad import PadSettings

RULES = LivenessRules(frames=5, live_min=3, confident_attack_score=0.05, max_frames=20)
LIVE = ("live", 0.9, "live")
ATTACK = ("attack", 0.2, "flat")
CONFIDENT = ("attack", 0.01, "too_cold")
UNKNOWN = ("unknown", 0.5, "too_small")


def feed(frames, rules: LivenessRules = RULES):
    fusion = LivenessFusion(rules)
    out = None
    for i, frame in enumerate(frames, 1):
        out = fusion.add(*frame)
        if out is not None:
            return out, i
    return out, len(frames)


def test_five_live_frames_are_live_after_exactly_n():
    out, at = feed([LIVE] * 9)
    assert out is not None and out.status == "live" and at == 5 and out.live == 5


def test_an_attack_majority_is_an_attack_with_its_commonest_reason():
    out, at = feed([LIVE, ATTACK, ATTACK, LIVE, ATTACK, LIVE])
    assert out is not None and (out.status, out.reason, at) == ("attack", "flat", 5)
    assert (out.live, out.attack) == (2, 3)


def test_a_confident_attack_vetoes_live_until_it_leaves_the_window():
    frames = [LIVE, LIVE, CONFIDENT, LIVE, LIVE] + [LIVE] * 3
    out, at = feed(frames)
    assert out is not None and out.status == "live" and at == 8  # frame 3 left the window


def test_unknown_frames_are_counted_never_fused():
    out, at = feed([UNKNOWN, LIVE, UNKNOWN, LIVE, LIVE, UNKNOWN, LIVE, LIVE])
    assert out is not None and out.status == "live" and at == 8 and out.frames == 8


def test_nothing_measurable_gives_unknown_with_the_commonest_reason():
    frames = [UNKNOWN] * 12 + [("unknown", 0.5, "out_of_frame")] * 8
    out, at = feed(frames)
    assert out is not None and (out.status, out.reason, at) == ("unknown", "too_small", 20)


def test_mixed_evidence_is_inconclusive_never_unknown():
    # every window of 5: 3 live, but a confident attack among the 2 attacks: never decided
    frames = [LIVE, LIVE, LIVE, CONFIDENT, ATTACK] * 4
    out, _ = feed(frames)
    assert out is not None and (out.status, out.reason) == ("unknown", INCONCLUSIVE)
    assert verdict_of(out, allow_unknown=True) == "staffed"  # mixed evidence: never allowed


def test_the_decision_is_final_for_the_track():
    fusion = LivenessFusion(RULES)
    for frame in [ATTACK] * 3 + [LIVE] * 2:
        fusion.add(*frame)
    assert fusion.decision is not None and fusion.decision.status == "attack"
    for _ in range(10):
        assert fusion.add(*LIVE) is fusion.decision


def test_verdicts_follow_the_unknown_policy():
    unknown, _ = feed([UNKNOWN] * 20)
    assert unknown is not None
    assert verdict_of(unknown, allow_unknown=False) == "staffed"
    assert verdict_of(unknown, allow_unknown=True) == "allow"


@pytest.mark.parametrize("frames,live_min,max_frames", [(5, 2, 20), (4, 2, 20), (5, 6, 20),
                                                        (5, 3, 4)])
def test_rules_need_a_live_majority(frames, live_min, max_frames):
    with pytest.raises(ValueError):
        LivenessRules(frames, live_min, 0.05, max_frames)
    with pytest.raises(SettingsError):
        parse_settings({"pad": {"fuse_frames": frames, "live_frames": live_min,
                                "max_frames": max_frames}})


def test_rules_from_settings():
    rules = LivenessRules.from_settings(PadSettings(fuse_frames=7, live_frames=5, max_frames=30))
    assert (rules.frames, rules.live_min, rules.max_frames) == (7, 5, 30)


frame_st = st.one_of(
    st.tuples(st.just("live"), st.floats(0.5, 1.0), st.just("live")),
    st.tuples(st.just("attack"), st.floats(0.0, 0.5), st.sampled_from(["flat", "too_cold"])),
    st.tuples(st.just("unknown"), st.just(0.5), st.sampled_from(["too_small", "no_thermal"])))
rules_st = st.integers(1, 9).flatmap(lambda n: st.builds(
    LivenessRules, st.just(n), st.integers(n // 2 + 1, n), st.floats(0.0, 0.3),
    st.integers(n, 3 * n + 5)))


@settings(max_examples=300, deadline=None)
@given(rules=rules_st, frames=st.lists(frame_st, max_size=60))
def test_live_only_on_a_live_window_without_a_confident_attack(rules, frames):
    fusion = LivenessFusion(rules)
    measured: list[tuple[str, float, str]] = []
    for frame in frames:
        if fusion.decision is not None:
            break
        if frame[0] != "unknown":
            measured.append(frame)
        out = fusion.add(*frame)
        if out is not None and out.status == "live":
            window = measured[-rules.frames:]
            assert len(window) == rules.frames
            assert sum(d == "live" for d, _, _ in window) >= rules.live_min
            assert 2 * sum(d == "attack" for d, _, _ in window) < rules.frames
            assert not any(d == "attack" and s <= rules.confident_attack_score
                           for d, s, _ in window)
        if out is not None and out.status == "attack":
            window = measured[-rules.frames:]
            assert 2 * sum(d == "attack" for d, _, _ in window) > rules.frames


@st.composite
def attack_majority_input(draw, n: int):
    """PAD frames in which every window of n consecutive measured frames is an attack
    majority (at most (n - 1) // 2 live), unknown frames interleaved anywhere after the first
    frame (an attack: input with nothing measured is no attack-majority input)."""
    measured: list[tuple[str, float, str]] = [("attack", 0.3, "flat")]
    out = list(measured)
    for _ in range(draw(st.integers(0, 60))):
        if draw(st.booleans()) and draw(st.booleans()):
            out.append(("unknown", 0.5, draw(st.sampled_from(["too_small", "no_thermal"]))))
            continue
        tail = measured[-(n - 1):] if n > 1 else []
        lives = sum(d == "live" for d, _, _ in tail)
        if draw(st.booleans()) and lives + 1 <= (n - 1) // 2:
            frame = ("live", draw(st.floats(0.5, 1.0)), "live")
        else:
            frame = ("attack", draw(st.floats(0.0, 0.5)), "flat")
        measured.append(frame)
        out.append(frame)
    return out


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 9), data=st.data(), allow=st.booleans())
def test_the_lane_never_grants_on_attack_majority_input(n, data, allow):
    rules = LivenessRules(n, n // 2 + 1, 0.05, 3 * n)
    frames = data.draw(attack_majority_input(n))
    clock = FakeClock()
    machine = LaneMachine("A", LaneRules(pad_required=True), clock)
    machine.present(1)
    fusion = LivenessFusion(rules)
    actions = []
    for frame in frames:
        actions += machine.match(1, "c-1", "match")  # a gallery that always matches: refused
        if machine.wants_liveness and (out := fusion.add(*frame)) is not None:
            actions += machine.liveness(1, verdict_of(out, allow), out.reason)
        actions += machine.thermal(1, "pass")
        clock.advance(0.05)
        actions += machine.tick()
    assert not any(isinstance(a, OpenGate) for a in actions)
    assert not any(getattr(a, "kind", None) is Kind.GRANTED for a in actions)


def test_machine_takes_no_match_before_pad_and_none_after_an_attack():
    clock = FakeClock()
    machine = LaneMachine("A", LaneRules(pad_required=True), clock)
    machine.present(7)
    assert machine.wants_liveness and not machine.wants_match
    assert machine.match(7, "c-1", "match") == []  # refused: PAD has not spoken
    actions = machine.liveness(7, "attack", "too_cold")
    assert isinstance(actions[0], DenyGate)
    assert actions[1].kind is Kind.PRESENTATION_ATTACK and actions[1].reason == "too_cold"
    assert machine.state is LaneState.NOT_MATCHED and machine.message
    assert machine.match(7, "c-1", "match") == [] and machine.decided(7)
    assert not machine.wants_liveness


def test_machine_live_then_match_grants_and_staffed_denies():
    clock = FakeClock()
    machine = LaneMachine("A", LaneRules(pad_required=True), clock)
    machine.present(1)
    assert [a.kind for a in machine.liveness(1, "live")] == [Kind.PAD_LIVE]
    assert machine.wants_match and not machine.wants_liveness
    assert any(isinstance(a, OpenGate) for a in machine.match(1, "c-1", "match"))
    clock.advance(10)
    machine.tick()
    machine.passage(None)
    clock.advance(10)
    machine.tick()
    machine.present(2)
    actions = machine.liveness(2, "staffed", "too_small")
    assert isinstance(actions[0], DenyGate) and actions[1].kind is Kind.PAD_STAFFED
    assert machine.message == "please use the staffed lane"


def test_a_successor_track_starts_pad_again():
    clock = FakeClock()
    machine = LaneMachine("A", LaneRules(pad_required=True), clock)
    machine.present(1)
    machine.liveness(1, "live")
    assert machine.track_lost(1, successor=2) == []
    assert machine.track_id == 2 and machine.wants_liveness and not machine.wants_match


def test_without_pad_required_the_machine_is_unchanged():
    machine = LaneMachine("A", LaneRules(), FakeClock())
    machine.present(1)
    assert machine.wants_match and not machine.wants_liveness
    assert machine.liveness(1, "attack") == []


class FakeDetector:
    """Frame-level PAD that answers from a script, counting its calls."""

    def __init__(self, answers) -> None:
        self.answers = list(answers)
        self.calls = 0

    def measure(self, faces, thermal):
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else LIVE
        if isinstance(answer, Exception):
            raise answer
        return [PadResult(answer[0], answer[1], answer[2]) for _ in faces]


def _gate_setup(detector, allow=False, rules=RULES):
    import numpy as np

    from edge.vision.tracker import Track
    from edge.vision.types import Face

    clock = FakeClock()
    machine = LaneMachine("A", LaneRules(pad_required=True), clock)
    machine.present(1)
    face = Face((10.0, 10.0, 50.0, 60.0), 1.0, np.zeros((5, 2), np.float32))
    track = Track(1, face, 0.0, 0.0, 1)
    gate = PadGate(detector, rules, allow_unknown=allow,
                   kind="none" if detector is None else "thermal")
    return gate, {"A": machine}, {"A": [track]}


def test_pad_gate_fuses_distinct_thermal_frames_only():
    import numpy as np

    detector = FakeDetector([LIVE] * 10)
    gate, machines, zone = _gate_setup(detector)
    frame = np.zeros((120, 160), np.uint16)
    actions = []
    for _ in range(6):  # one slow thermal frame attached to six visible frames
        actions += gate.step(machines, zone, frame)
    assert detector.calls == 1 and not actions and machines["A"].wants_liveness
    for _ in range(4):
        actions += gate.step(machines, zone, np.zeros((120, 160), np.uint16) + 1)
    assert [a.kind for a in actions] == [Kind.PAD_LIVE] and not machines["A"].wants_liveness


def test_pad_gate_a_failing_frame_is_an_unknown_frame_never_a_pass():
    import numpy as np

    detector = FakeDetector([RuntimeError("bad frame")] * 30)
    gate, machines, zone = _gate_setup(detector, allow=False)
    actions = []
    for i in range(RULES.max_frames):
        actions += gate.step(machines, zone, np.full((120, 160), i, np.uint16))
    assert [a.kind for a in actions if hasattr(a, "kind")] == [Kind.PAD_STAFFED]


def test_pad_gate_without_pad_sends_to_staff_at_once_and_with_allow_mixed_is_staffed():
    import numpy as np

    gate, machines, zone = _gate_setup(None)
    actions = gate.step(machines, zone, None)
    assert isinstance(actions[0], DenyGate) and actions[1].reason == "no_pad"
    mixed = [LIVE, LIVE, LIVE, CONFIDENT, ATTACK] * 4
    gate, machines, zone = _gate_setup(FakeDetector(mixed), allow=True)
    actions = []
    for i in range(20):
        actions += gate.step(machines, zone, np.full((120, 160), i, np.uint16))
    assert [a.reason for a in actions if hasattr(a, "kind")] == [INCONCLUSIVE]
    assert isinstance(actions[0], DenyGate)
