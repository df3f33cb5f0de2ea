"""The inference pipeline on the synthetic scene with the real face engine and a FakeClock:
one embedding per evidence frame (K per track), one decision per walk, probes wiped, passage
-> boarded, gate failures -> manual, and no log event or decision event carrying biometric
data (multi-frame evidence and wrong-flight travellers: tests/test_decisions_evidence.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import structlog

from edge.capture.source import Frame
from edge.consent.gallery import MatchResult
from edge.decisions.events import DecisionEvent, EventBus, Kind
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.pipeline import Lane, Pipeline
from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
from edge.screening.synth_source import SyntheticScene
from edge.screening.thermal import ThermalScreener
from foundation.clock import FakeClock
from foundation.settings import ThermalSettings, VisionSettings
from gate_controller.fake_client import FakeGateClient
from wire.gate import LaneState as GateLaneState
from wire.gate import PassageEvent, StateEvent

ZONE = np.array([(200, 90), (440, 90), (440, 420), (200, 420)], np.float32)


@pytest.fixture(scope="module")
def engine(installed_model_dir: Path):
    from edge.vision.engine import FaceEngine

    return FaceEngine.from_settings(VisionSettings(model_dir=installed_model_dir))


class RecordingMatcher:
    def __init__(self, consent_id: str | None) -> None:
        self.consent_id = consent_id
        self.probes: list[np.ndarray] = []

    def match(self, probe: np.ndarray) -> MatchResult:
        assert probe.shape == (512,) and abs(float(np.linalg.norm(probe)) - 1) < 1e-3
        self.probes.append(probe)
        if self.consent_id is None:
            return MatchResult(None, 0.1, -1.0, "below_threshold")
        return MatchResult(self.consent_id, 0.9, -1.0, "match")


def run_walk(engine, matcher, gate, canthus_c: float = 36.6, frames: int = 28,
             screener_calibration=None, rules: LaneRules | None = None):
    clock = FakeClock()
    calibration = synthetic_calibration((640, 480), (160, 120), seed=3)
    scene = SyntheticScene(SceneRenderer(calibration, default_face_photos(), seed=3), clock)
    events: list[DecisionEvent] = []
    boarded: list[str] = []

    class Boarding:
        def mark_boarded(self, consent_id: str) -> None:
            boarded.append(consent_id)

    pipeline = Pipeline(
        engine=engine, lanes=[Lane(LaneMachine("A", rules or LaneRules(thermal_enabled=True),
                                               clock), ZONE)],
        matcher=matcher, gate=gate, boarding=Boarding(), bus=EventBus([events.append]),
        clock=clock, screener=ThermalScreener(screener_calibration or calibration,
                                              ThermalSettings()))
    scene.walk(0, canthus_c, approach_s=1.0, dwell_s=1.6)
    with structlog.testing.capture_logs() as logs:
        for seq in range(1, frames + 1):
            clock.advance(0.1)
            visible, thermal = scene.render_now()
            pipeline.process(Frame(seq, clock.monotonic(), visible, thermal))
    return pipeline, events, logs, boarded


def kinds(events: list[DecisionEvent]) -> list[Kind]:
    return [e.kind for e in events]


def test_enrolled_traveller_granted_once_probe_wiped(engine) -> None:
    matcher, gate = RecordingMatcher("c-1"), FakeGateClient()
    pipeline, events, logs, boarded = run_walk(engine, matcher, gate)
    assert kinds(events).count(Kind.GRANTED) == 1 and Kind.PRESENTED in kinds(events)
    assert [c[0] for c in gate.calls] == ["open"]
    # embedded once per evidence frame (3), not every frame; the 4th probe is their fusion
    assert len(matcher.probes) == 4
    assert not any(p.any() for p in matcher.probes)  # all wiped right after the decision
    assert pipeline.metrics.embeddings.value() == 3
    assert pipeline.evidence.get("A") is None  # the evidence went with the decision
    assert len(pipeline.latencies) == 1 and 0 <= pipeline.latencies[0] < 1.0
    assert Kind.THERMAL_PASS in kinds(events)
    # passage closes the loop and marks boarded
    grant = gate.calls[0][2]
    assert boarded == []
    pipeline.on_gate_event(PassageEvent(lane="A", grant_id=grant))
    assert boarded == ["c-1"]
    assert Kind.PASSAGE in kinds(events)
    # no decision event or log line carries biometric data
    for e in events:
        assert set(e.public()) == {"kind", "lane", "state", "reason"}
        assert len(e.reason) < 200
    for entry in logs:
        for key, value in entry.items():
            assert not isinstance(value, np.ndarray | bytes | bytearray), (key, entry)
            assert not (isinstance(value, list | tuple) and len(value) > 16), (key, entry)
            assert key not in {"embedding", "probe", "image", "frame", "crop", "landmarks"}


def test_unknown_traveller_denied_and_fever_referred(engine) -> None:
    matcher, gate = RecordingMatcher(None), FakeGateClient()
    _, events, _, _ = run_walk(engine, matcher, gate, canthus_c=39.4)
    assert Kind.NOT_MATCHED in kinds(events) and Kind.GRANTED not in kinds(events)
    assert Kind.REFERRED in kinds(events)
    assert gate.calls == [("deny", "A")]


def test_gate_failure_goes_manual_and_sends_nothing_more(engine) -> None:
    matcher, gate = RecordingMatcher("c-1"), FakeGateClient(unavailable=True)
    pipeline, events, _, _ = run_walk(engine, matcher, gate)
    assert Kind.MANUAL in kinds(events)
    assert pipeline.lanes["A"].machine.state.value == "manual"
    assert gate.calls == [("open", "A", gate.calls[0][2], gate.calls[0][3])]  # tried once only
    assert pipeline.metrics.gate_errors.value(cmd="open") == 1


def test_refused_grant_and_controller_states(engine) -> None:
    """An ack with ok=false (e.g. during a fire alarm) is a failed grant; controller states
    manual/fault/emergency put the lane in manual, closed brings it back."""
    from foundation.clock import FakeClock

    clock = FakeClock()
    events: list[DecisionEvent] = []
    states: list[tuple[str, str]] = []
    pipeline = Pipeline(engine=engine, lanes=[Lane(LaneMachine("A", LaneRules(), clock), ZONE)],
                        matcher=RecordingMatcher("c-1"), gate=FakeGateClient(refuse=True),
                        boarding=None,
                        bus=EventBus([events.append]), clock=clock,
                        on_state=lambda lane, state, _d: states.append((lane, state)))
    machine = pipeline.lanes["A"].machine
    machine.present(1)
    pipeline._run(machine.match(1, "c-1"))
    assert machine.state.value == "manual" and pipeline.metrics.gate_errors.value(cmd="open") == 1
    pipeline.gate_up()
    assert machine.state.value == "idle"
    pipeline.on_gate_status({"A": GateLaneState.EMERGENCY_OPEN})
    assert machine.state.value == "manual" and states[-1] == ("A", "emergency")

    pipeline.on_gate_event(StateEvent(lane="A", state=GateLaneState.CLOSED, reason="reset"))
    assert machine.state.value == "idle" and states[-1] == ("A", "idle")


@pytest.mark.parametrize(("visible", "thermal", "camera"),
                         [((1280, 720), (160, 120), "visible"),
                          ((640, 480), (320, 240), "thermal")])
def test_frames_not_of_the_calibrated_size_refuse_thermal_screening(
        engine, visible, thermal, camera) -> None:
    """The cameras deliver 640x480 / 160x120, but the calibration was made for other sizes:
    eye positions would map to the wrong thermal pixels, so no reading is taken. Each track
    gets `unreliable` (reason calibration_size_mismatch), never a pass; the gauge is 1 and the
    log says it once (not per frame), naming the camera and what to do."""
    wrong = synthetic_calibration(visible, thermal, seed=3)
    matcher, gate = RecordingMatcher("c-1"), FakeGateClient()
    pipeline, events, logs, _ = run_walk(engine, matcher, gate, canthus_c=39.4,
                                         screener_calibration=wrong)
    thermal_events = [e for e in events
                      if e.kind in (Kind.THERMAL_PASS, Kind.REFERRED, Kind.UNRELIABLE)]
    assert [(e.kind, e.reason) for e in thermal_events] == \
        [(Kind.UNRELIABLE, "calibration_size_mismatch")]
    assert "consentgate_thermal_calibration_mismatch 1" in \
        pipeline.metrics.registry.render().splitlines()
    errors = [e for e in logs if e["event"] == "thermal_calibration_mismatch"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"
    assert f"the {camera} camera gives" in errors[0]["problem"]
    assert "calibrate-thermal" in errors[0]["action"]
    # boarding itself is not blocked by default (refer_blocks_boarding is off)
    assert kinds(events).count(Kind.GRANTED) == 1


def test_size_mismatch_holds_a_match_when_thermal_blocks_boarding(engine) -> None:
    wrong = synthetic_calibration((1280, 720), (160, 120), seed=3)
    matcher, gate = RecordingMatcher("c-1"), FakeGateClient()
    _, events, _, _ = run_walk(engine, matcher, gate, screener_calibration=wrong,
                               rules=LaneRules(thermal_enabled=True,
                                               refer_blocks_boarding=True))
    assert Kind.GRANTED not in kinds(events) and Kind.MATCHED_HELD in kinds(events)
    assert [c[0] for c in gate.calls] == ["deny"]


def test_calibrated_sizes_pass_the_check(engine) -> None:
    pipeline, events, logs, _ = run_walk(engine, RecordingMatcher("c-1"), FakeGateClient())
    assert Kind.THERMAL_PASS in kinds(events)
    assert not [e for e in logs if e["event"] == "thermal_calibration_mismatch"]
    assert "consentgate_thermal_calibration_mismatch 0" in \
        pipeline.metrics.registry.render().splitlines()
