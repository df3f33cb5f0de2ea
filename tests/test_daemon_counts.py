"""Anonymous counts from the pipeline without models: people detected (new tracks), peak in
view, and close-contact events (new pairs under the distance, not one per frame)."""

from __future__ import annotations

import numpy as np

from edge.capture.source import Frame
from edge.decisions.events import EventBus
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.pipeline import Lane, Pipeline
from edge.screening.close_quarters import CloseQuarters
from edge.vision.types import Face, Quality
from foundation.clock import FakeClock
from foundation.settings import CloseQuartersSettings

NOWHERE = np.array([(0, 0), (1, 0), (1, 1)], np.float32)  # a zone nobody stands in


def face(x: float, eye_gap: float = 40.0) -> Face:
    lm = np.array([[x, 200], [x + eye_gap, 200], [x + eye_gap / 2, 220],
                   [x + 5, 240], [x + eye_gap - 5, 240]], np.float32)
    return Face((x - 20, 170, eye_gap + 40, 100), 0.9, lm)


class ScriptedEngine:
    def __init__(self, script: list[list[Face]]) -> None:
        self.script = script
        self.i = 0

    def detect(self, image):
        faces = self.script[min(self.i, len(self.script) - 1)]
        self.i += 1
        return faces

    def embed(self, image, faces):
        raise AssertionError("nobody is in a gate zone: nothing may be embedded")

    def quality(self, image, face) -> Quality:
        return Quality(True)


class Counters:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.peak = 0

    def add(self, field: str, n: int = 1) -> None:
        self.counts[field] = self.counts.get(field, 0) + n

    def observe_peak(self, n: int) -> None:
        self.peak = max(self.peak, n)


def test_people_peak_and_close_contact_events() -> None:
    together = [face(100), face(200)]  # eye gap 40 px at f=900: ~1.4 m away, 0.16 m apart
    apart = [face(100), face(600, eye_gap=10)]  # the second one far behind
    script = [together] * 3 + [apart] * 3 + [together] * 3 + [[face(100)]]
    clock = FakeClock()
    counters = Counters()
    pipeline = Pipeline(engine=ScriptedEngine(script),
                        lanes=[Lane(LaneMachine("A", LaneRules(), clock), NOWHERE)],
                        matcher=None, gate=None, boarding=None, bus=EventBus([]), clock=clock,
                        counters=counters,
                        close_quarters=lambda size: CloseQuarters(CloseQuartersSettings(), size))
    image = np.zeros((480, 640, 3), np.uint8)
    for seq in range(1, len(script) + 1):
        clock.advance(0.1)
        pipeline.process(Frame(seq, clock.monotonic(), image))
    assert counters.counts["close_contacts"] == 2  # two meetings, not six frames
    assert counters.peak == 2
    # the far face changes size a lot between 'apart' and 'together': a new track each time
    assert counters.counts["people_detected"] >= 2


def test_kiosk_counts_granted_on_grant_boarded_only_on_passage() -> None:
    """The kiosk's 'granted' count moves on a face grant; 'boarded' only when the passage
    sensor confirms that grant was used. A grant nobody walks through, and a passage with no
    face grant (e.g. a supervisor's override), board nobody."""
    from edge.daemon import board_sink
    from edge.kiosk.board import LaneBoard

    clock = FakeClock()
    board = LaneBoard(["A"], clock)
    grants = iter(["g1", "g2"])
    machine = LaneMachine("A", LaneRules(grant_ttl_ms=2000), clock, lambda: next(grants))
    bus = EventBus([board_sink(board)])

    def feed(actions) -> None:
        for a in actions:
            if hasattr(a, "kind"):
                bus.emit(a)

    def counts() -> dict:
        return board.snapshot()["counts"]

    feed(machine.present(1))
    feed(machine.match(1, "c1"))
    assert counts()["granted"] == 1 and counts().get("boarded", 0) == 0
    clock.advance(2.5)  # nobody walks through: the grant times out
    feed(machine.tick())
    assert counts()["granted"] == 1 and counts().get("boarded", 0) == 0
    feed(machine.passage(None))  # a passage without a face grant
    feed(machine.passage("nope"))
    assert counts().get("boarded", 0) == 0
    feed(machine.present(2))
    feed(machine.match(2, "c2"))
    feed(machine.passage("g2"))
    assert counts()["granted"] == 2 and counts()["boarded"] == 1
