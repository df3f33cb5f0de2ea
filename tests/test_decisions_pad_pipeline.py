"""PAD in the decision, end to end on the synthetic scene with the real face engine: a print at
room temperature, a warmed print and a phone replay of an enrolled traveller are not granted,
the gallery is never searched, staff get an alert without identity and `presentation_attacks`
counts one; a traveller in glasses is granted; `unknown` follows pad.unknown_policy; with no
thermal camera PAD is `none` and pad.required decides."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edge.capture.source import Frame
from edge.composition.pad_setup import build_pad, pad_summary
from edge.consent.gallery import MatchResult
from edge.decisions.events import DecisionEvent, EventBus, Kind, counters_sink
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.liveness import LivenessRules
from edge.decisions.pad_gate import NO_PAD, NO_THERMAL, PadGate
from edge.decisions.pipeline import Lane, Pipeline
from edge.kiosk.board import LaneBoard
from edge.kiosk.board_feed import board_sink
from edge.screening.pad import PadDetector
from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
from edge.screening.synth_source import SyntheticScene
from edge.screening.thermal import ThermalScreener
from foundation.clock import FakeClock
from foundation.settings import Settings, ThermalSettings, VisionSettings
from gate_controller.fake_client import FakeGateClient

ZONE = np.array([(200, 90), (440, 90), (440, 420), (200, 420)], np.float32)
IDENTITY_WORDS = ("c-1", "consent", "name", "reference")


@pytest.fixture(scope="module")
def engine(installed_model_dir: Path):
    from edge.vision.engine import FaceEngine

    return FaceEngine.from_settings(VisionSettings(model_dir=installed_model_dir))


class Matcher:
    """A gallery in which everyone is enrolled: any search would grant."""

    def __init__(self) -> None:
        self.searches = 0

    def match(self, probe: np.ndarray) -> MatchResult:
        self.searches += 1
        return MatchResult("c-1", 0.9, -1.0, "match")


class Run:
    def __init__(self, engine, overlay: str | None = None, *, pad: str = "thermal",
                 allow: bool = False, thermal: bool = True, frames: int = 40) -> None:
        clock = FakeClock()
        calibration = synthetic_calibration((640, 480), (160, 120), seed=3)
        scene = SyntheticScene(SceneRenderer(calibration, default_face_photos(), seed=3), clock)
        self.events: list[DecisionEvent] = []
        self.counts: Counter[str] = Counter()
        self.states: list[tuple[str, str, str]] = []
        self.matcher, self.gate = Matcher(), FakeGateClient()
        self.board = LaneBoard(["A"], clock)
        rules = LivenessRules(5, 3, 0.05, 12)
        liveness = {"thermal": lambda: PadGate(PadDetector(calibration), rules,
                                               allow_unknown=allow),
                    "none_required": lambda: PadGate(None, rules, kind="none"),
                    "none": lambda: None}[pad]()
        self.pipeline = Pipeline(
            engine=engine, lanes=[Lane(LaneMachine("A", LaneRules(
                thermal_enabled=thermal, pad_required=liveness is not None), clock), ZONE)],
            matcher=self.matcher, gate=self.gate, boarding=None,
            bus=EventBus([self.events.append, board_sink(self.board),
                          counters_sink(lambda f, n: self.counts.update({f: n}))]),
            clock=clock, on_state=lambda *s: self.states.append(s),
            screener=ThermalScreener(calibration, ThermalSettings()) if thermal else None,
            liveness=liveness)
        scene.walk(0, 36.6, approach_s=1.0, dwell_s=3.0, thermal_overlay=overlay)
        for seq in range(1, frames + 1):
            clock.advance(0.1)
            visible, thermal_ck = scene.render_now()
            self.pipeline.process(Frame(seq, clock.monotonic(), visible,
                                        thermal_ck if thermal else None))

    @property
    def kinds(self) -> list[Kind]:
        return [e.kind for e in self.events]


@pytest.mark.parametrize("overlay", ["print_room", "print_warm", "phone_replay"])
def test_an_attack_is_not_granted_nor_searched_and_staff_are_alerted(engine, overlay):
    run = Run(engine, overlay)
    assert Kind.PRESENTATION_ATTACK in run.kinds, run.kinds
    assert Kind.GRANTED not in run.kinds and Kind.PAD_LIVE not in run.kinds
    assert run.kinds.count(Kind.PRESENTATION_ATTACK) == 1
    assert run.matcher.searches == 0  # the gallery was never searched: nobody's template
    assert run.pipeline.metrics.embeddings.value() == 0  # ... nor even an embedding made
    assert run.gate.calls == [("deny", "A")]
    assert run.counts["presentation_attacks"] == 1 and run.counts["matched"] == 0
    assert run.counts["not_matched"] == 0  # its own outcome (presented = m + nm + pa)
    snap = run.board.snapshot()
    (alert,) = [a for a in snap["alerts"] if a["kind"] == "presentation_attack"]
    assert "lane A" in alert["message"]
    assert not any(w in alert["message"] for w in IDENTITY_WORDS)
    assert snap["counts"]["presentation_attack"] == 1
    assert ("A", "not_matched", "please see a member of staff") in run.states  # lane message


@pytest.mark.parametrize("overlay", [None, "bona_fide_glasses"])
def test_a_live_traveller_with_or_without_glasses_is_granted(engine, overlay):
    run = Run(engine, overlay)
    assert Kind.PAD_LIVE in run.kinds and Kind.GRANTED in run.kinds, run.kinds
    assert run.kinds.index(Kind.PAD_LIVE) < run.kinds.index(Kind.GRANTED)
    assert Kind.PRESENTATION_ATTACK not in run.kinds and run.counts["presentation_attacks"] == 0
    assert [c[0] for c in run.gate.calls] == ["open"]


def test_unknown_goes_to_the_staffed_lane_by_default(engine):
    run = Run(engine, pad="thermal", thermal=False)  # no thermal frame reaches PAD
    (event,) = [e for e in run.events if e.kind is Kind.PAD_STAFFED]
    assert event.reason == NO_THERMAL
    assert Kind.GRANTED not in run.kinds and run.matcher.searches == 0
    assert run.counts["not_matched"] == 1 and run.counts["presentation_attacks"] == 0
    assert ("A", "not_matched", "please use the staffed lane") in run.states


def test_unknown_allowed_by_the_policy_goes_on_to_the_match(engine):
    run = Run(engine, pad="thermal", thermal=False, allow=True)
    (event,) = [e for e in run.events if e.kind is Kind.PAD_LIVE]
    assert event.reason == NO_THERMAL  # said: allowed, not live
    assert Kind.GRANTED in run.kinds and run.matcher.searches >= 1


def test_no_thermal_camera_pad_required_sends_everyone_to_staff(engine):
    run = Run(engine, pad="none_required", thermal=False)
    (event,) = [e for e in run.events if e.kind is Kind.PAD_STAFFED]
    assert event.reason == NO_PAD and run.matcher.searches == 0
    assert Kind.GRANTED not in run.kinds


def test_no_thermal_camera_pad_not_required_grants_on_the_match_alone(engine):
    run = Run(engine, pad="none", thermal=False)
    assert Kind.GRANTED in run.kinds
    assert not {Kind.PAD_LIVE, Kind.PAD_STAFFED, Kind.PRESENTATION_ATTACK} & set(run.kinds)


def test_the_daemon_picks_the_pad_the_box_has_and_says_so():
    clock = FakeClock()
    calibration = synthetic_calibration((640, 480), (160, 120), seed=3)
    screener = ThermalScreener(calibration, ThermalSettings())
    board = LaneBoard(["A"], clock)
    gate = build_pad(Settings(), screener, board)
    assert gate is not None and gate.kind == "thermal" and not gate.allow_unknown
    assert board.snapshot()["pad"]["active"] == "thermal"
    assert board.snapshot()["pad"]["required"] is True
    # no thermal camera: none, not required by default, and said so
    board = LaneBoard(["A"], clock)
    assert build_pad(Settings(), None, board) is None
    pad = board.snapshot()["pad"]
    assert pad["active"] == "none" and pad["required"] is False
    assert "none" in pad["message"] and "face match alone" in pad["message"]
    # required without a thermal camera: a gate that sends everyone to staff
    required = Settings.model_validate({"pad": {"required": True}})
    gate = build_pad(required, None, LaneBoard(["A"], clock))
    assert gate is not None and gate.kind == "none"
    # pad.enabled = false on a thermal box: none, still required, every traveller to staff
    off = Settings.model_validate({"pad": {"enabled": False}})
    assert pad_summary(off, thermal_camera=True)["active"] == "none"
    assert build_pad(off, screener, None).kind == "none"
    allow = Settings.model_validate({"pad": {"unknown_policy": "allow"}})
    assert build_pad(allow, screener, None).allow_unknown


def test_pad_summary_follows_the_settings_thermal_camera():
    synthetic = Settings.model_validate({"capture": {"visible_source": "synthetic"}})
    assert pad_summary(synthetic)["active"] == "thermal"
    camera = Settings.model_validate({"capture": {"visible_source": "0"},
                                      "thermal": {"source": "/dev/video2"}})
    assert pad_summary(camera)["active"] == "thermal"
    plain = Settings.model_validate({"capture": {"visible_source": "0"}})
    assert pad_summary(plain)["active"] == "none" and not pad_summary(plain)["required"]
    disabled = Settings.model_validate({"capture": {"visible_source": "0"},
                                        "thermal": {"enabled": False, "source": "/dev/video2"}})
    assert pad_summary(disabled)["active"] == "none"
