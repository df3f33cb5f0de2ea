"""Token mode at the lanes: TokenLanes on a LaneMachine with a FakeClock (1:1 only, no token ->
staffed lane with nothing embedded, refused tokens decided without a comparison, templates
wiped at the decision or when the hold runs out, `both` falling back to the gallery), then the
whole pipeline on the synthetic scene with the real engine and a real sealed store: the
consenting traveller with their token boards, and not one 1:N search runs in token mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.capture.source import Frame
from edge.consent.gallery import MatchResult
from edge.consent.sealed import SealedTemplates, Unsealed
from edge.consent.token_format import TokenError
from edge.decisions.events import DecisionEvent, EventBus, Kind
from edge.decisions.evidence import EvidenceBook, EvidenceRules
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.pipeline import Lane, Pipeline
from edge.decisions.tokens import NO_TOKEN, TokenLanes
from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
from edge.screening.synth_source import SyntheticScene
from foundation.clock import FakeClock
from foundation.settings import VisionSettings
from gate_controller.fake_client import FakeGateClient

ZONE = np.array([(200, 90), (440, 90), (440, 420), (200, 420)], np.float32)
DIM = 512


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class Opener:
    """Stands in for SealedTemplates.open: 'GOOD' unseals unit(1), 'GONE' is withdrawn."""

    def __init__(self) -> None:
        self.opened: list[Unsealed] = []

    def __call__(self, text: str) -> Unsealed:
        if text == "GONE":
            raise TokenError("token_withdrawn", "withdrawn")
        if text == "AWAY":
            raise TokenError("wrong_flight", "another flight")
        if text == "DOWN":
            from edge.consent.errors import CorruptStoreError

            raise CorruptStoreError("the consent store failed")
        if text != "GOOD":
            raise TokenError("token_invalid", "not a token")
        u = Unsealed("c" * 32, unit(1).copy(), expires_at=1e12)
        self.opened.append(u)
        return u


class Gallery:
    def __init__(self) -> None:
        self.calls = 0

    def match(self, probe: np.ndarray) -> MatchResult:
        self.calls += 1
        return MatchResult(None, 0.1, -1.0, "below_threshold")


def lanes(mode: str, clock: FakeClock, alerts: list | None = None, opener=None):
    opener = opener or Opener()
    tl = TokenLanes(mode, opener, clock, ["A"], threshold=0.414, hold_s=10.0,  # type: ignore
                    alert=(lambda lane, m: alerts.append((lane, m))) if alerts is not None
                    else None)
    return tl, opener


def presenting(clock: FakeClock) -> LaneMachine:
    machine = LaneMachine("A", LaneRules(presenting_timeout_s=2.0), clock)
    machine.present(7)
    return machine


def test_token_mode_without_a_token_embeds_nothing_and_sends_to_staffed_lane(fake_clock):
    tl, _ = lanes("token", fake_clock)
    gallery = Gallery()
    machine = presenting(fake_clock)
    assert tl.matcher("A", gallery) is None  # nothing to compare with: no embedding at all
    assert tl.verdict("A", machine) is None
    fake_clock.advance(2.5)
    assert machine.match_due
    assert tl.verdict("A", machine) == (7, (None, NO_TOKEN))
    assert gallery.calls == 0


def test_a_held_token_is_compared_1_to_1_and_wiped_after_the_decision(fake_clock):
    tl, opener = lanes("token", fake_clock)
    assert tl.submit("GOOD", None, "scanner")  # one lane: the lane is implied
    machine = LaneMachine("A", LaneRules(), fake_clock)
    assert tl.verdict("A", machine) is None and tl.held("A") == "template"
    machine.present(7)
    m = tl.matcher("A", Gallery())
    assert m is not None
    same = m.match(unit(1))
    assert same.matched and same.threshold == pytest.approx(0.414)
    assert not m.match(unit(2)).matched
    machine.match(7, same.consent_id, "match")  # the lane decides
    assert tl.verdict("A", machine) is None
    assert tl.held("A") is None and not opener.opened[0].vector.any()  # zeroed


def test_a_refused_token_decides_without_a_comparison_and_alerts(fake_clock):
    alerts: list = []
    tl, _ = lanes("both", fake_clock, alerts)
    gallery = Gallery()
    machine = presenting(fake_clock)
    tl.submit("GONE", "A", "camera")
    assert tl.verdict("A", machine) == (7, (None, "token_withdrawn"))
    assert tl.matcher("A", gallery) is gallery  # refusal used up; `both` falls back
    assert gallery.calls == 0
    assert alerts and alerts[0][0] == "A" and "withdrawn" in alerts[0][1]
    assert "GONE" not in alerts[0][1]
    tl.submit("AWAY", "A", "camera")
    machine2 = LaneMachine("A", LaneRules(), fake_clock)
    machine2.present(8)
    assert tl.verdict("A", machine2) == (8, (None, "wrong_flight"))


def test_a_store_failure_refuses_the_token_and_never_stops_the_lane(fake_clock):
    alerts: list = []
    tl, _ = lanes("token", fake_clock, alerts)
    tl.submit("DOWN", "A", "scanner")
    assert tl.verdict("A", presenting(fake_clock)) == (7, (None, "token_unavailable"))
    assert "call an engineer" in alerts[0][1]


def test_an_unused_token_is_wiped_when_its_hold_ends(fake_clock):
    tl, opener = lanes("token", fake_clock)
    tl.submit("GOOD", "A", "kiosk")
    idle = LaneMachine("A", LaneRules(), fake_clock)
    tl.verdict("A", idle)
    fake_clock.advance(11.0)
    tl.verdict("A", idle)
    assert tl.held("A") is None and not opener.opened[0].vector.any()


def test_a_repeat_of_the_held_token_is_ignored_and_a_new_one_replaces_it(fake_clock):
    tl, opener = lanes("token", fake_clock)
    machine = LaneMachine("A", LaneRules(), fake_clock)
    for _ in range(3):
        tl.submit("GOOD", "A", "camera")
        tl.verdict("A", machine)
    assert len(opener.opened) == 1
    tl.submit("GONE", "A", "scanner")
    tl.verdict("A", machine)
    assert tl.held("A") == "token_withdrawn" and not opener.opened[0].vector.any()


def test_both_mode_a_token_replaces_gallery_evidence(fake_clock):
    tl, _ = lanes("both", fake_clock)
    book = EvidenceBook(EvidenceRules())
    tl.attach(book)
    gallery = Gallery()
    machine = presenting(fake_clock)
    assert tl.matcher("A", gallery) is gallery
    book.for_track("A", 7).add(unit(1), gallery.match(unit(1)), 0.0)
    tl.submit("GOOD", "A", "kiosk")
    tl.verdict("A", machine)
    assert book.get("A") is None  # the gallery's evidence does not count towards the token
    assert tl.matcher("A", gallery) is not gallery


def test_unknown_lanes_bad_input_and_a_full_queue_are_refused(fake_clock):
    tl = TokenLanes("token", Opener(), fake_clock, ["A", "B"], threshold=0.4, hold_s=5,
                    inbox=2)
    assert not tl.submit("GOOD", None, "camera")  # two lanes: which one?
    assert not tl.submit("GOOD", "C", "kiosk")
    assert tl.submit("GOOD", "A", "kiosk") and tl.submit("GOOD", "B", "kiosk")
    assert not tl.submit("GOOD", "A", "kiosk")  # full until the inference thread drains it
    tl.close()
    assert tl.held("A") is None


# ---------------------------------------------------------------- the whole pipeline
@pytest.fixture(scope="module")
def engine(installed_model_dir: Path):
    from edge.vision.engine import FaceEngine

    return FaceEngine.from_settings(VisionSettings(model_dir=installed_model_dir))


def walk(engine, store, clock, token: str | None, mode: str = "token", frames: int = 40):
    scene = SyntheticScene(SceneRenderer(synthetic_calibration((640, 480), (160, 120), seed=3),
                                         default_face_photos(), seed=3), clock)
    sealed = SealedTemplates(store, clock)
    tl = TokenLanes(mode, lambda text: sealed.open(text), clock, ["A"],  # type: ignore[arg-type]
                    threshold=0.414, hold_s=10.0)
    gallery, gate, events = Gallery(), FakeGateClient(), []

    class Boarding:
        def mark_boarded(self, consent_id: str) -> None:
            store.mark_boarded(consent_id)

    pipeline = Pipeline(engine=engine, lanes=[Lane(LaneMachine(
        "A", LaneRules(presenting_timeout_s=2.0), clock), ZONE)], matcher=gallery, gate=gate,
        boarding=Boarding(), bus=EventBus([events.append]), clock=clock, tokens=tl)
    if token is not None:
        tl.submit(token, "A", "scanner")
    scene.walk(0, 36.6, approach_s=1.0, dwell_s=3.0)
    for seq in range(1, frames + 1):
        clock.advance(0.1)
        visible, thermal = scene.render_now()
        pipeline.process(Frame(seq, clock.monotonic(), visible, thermal))
    decisions = [e for e in events if e.kind in (Kind.GRANTED, Kind.NOT_MATCHED,
                                                  Kind.WRONG_FLIGHT)]
    return decisions, gallery, gate, pipeline, tl


def enrol_astronaut(engine, store, clock) -> str:
    chip = default_face_photos()[0]
    probe = engine.embed(chip, engine.detect(chip)[:1])
    consent = store.grant_consent("AST001", "boarding", "XY123 2027-01-15",
                                  clock.now() + 3600, "ann")
    _, key = SealedTemplates(store, clock).enrol(consent.consent_id, [probe[0]], "fr_feature",
                                                 "ann")
    probe.fill(0.0)
    token = key.token()
    key.wipe()
    return token


def test_pipeline_token_mode_boards_with_the_token_and_never_searches(engine, store,
                                                                      fake_clock):
    token = enrol_astronaut(engine, store, fake_clock)
    decisions, gallery, gate, _, tl = walk(engine, store, fake_clock, token)
    assert [d.kind for d in decisions] == [Kind.GRANTED], decisions
    assert [c[0] for c in gate.calls] == ["open"]
    assert gallery.calls == 0  # no 1:N search in token mode
    assert tl.held("A") is None  # the unsealed template went with the decision
    assert tl.open_seconds and max(tl.open_seconds) < 0.05


def test_pipeline_token_mode_without_a_token_staffed_lane_nothing_embedded(
        engine, store, fake_clock):
    enrol_astronaut(engine, store, fake_clock)  # enrolled, but shows no token
    decisions, gallery, gate, pipeline, _ = walk(engine, store, fake_clock, None)
    assert [(d.kind, d.reason) for d in decisions] == [(Kind.NOT_MATCHED, NO_TOKEN)]
    assert gate.calls == [("deny", "A")]
    assert gallery.calls == 0 and pipeline.metrics.embeddings.value() == 0


def test_pipeline_withdrawn_token_is_refused_without_embedding(engine, store,
                                                               fake_clock):
    token = enrol_astronaut(engine, store, fake_clock)
    store.withdraw(reference="AST001", actor="ann")
    decisions, gallery, _, pipeline, _ = walk(engine, store, fake_clock, token)
    assert [(d.kind, d.reason) for d in decisions] == [(Kind.NOT_MATCHED, "token_withdrawn")]
    assert gallery.calls == 0 and pipeline.metrics.embeddings.value() == 0


def test_pipeline_both_mode_without_a_token_uses_the_gallery(engine, store, fake_clock):
    decisions, gallery, _, _, _ = walk(engine, store, fake_clock, None, mode="both")
    assert [d.kind for d in decisions] == [Kind.NOT_MATCHED]
    assert gallery.calls >= 1


def test_decision_events_carry_no_token(engine, store, fake_clock):
    token = enrol_astronaut(engine, store, fake_clock)
    import structlog

    with structlog.testing.capture_logs() as logs:
        decisions, *_ = walk(engine, store, fake_clock, token)
    text = repr(logs) + repr([DecisionEvent.public(d) for d in decisions])
    _, _, key, check = token.split(".")
    for part in (token, key, key.lower(), check):
        assert part not in text
    assert any(e["event"] == "token_opened" for e in logs)
    assert any(e["event"] == "token_wiped" for e in logs)
