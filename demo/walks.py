"""One traveller walks up to lane A: the decision, the thermal result and, for a grant, the
passage, read from the daemon's decision events and said in plain words as they come.

A granted traveller who was screened walks through (the simulated passage sensor), which marks
them boarded and deletes their template; everyone then leaves the scene.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edge.consent.sealed import REFUSALS
from edge.decisions.events import DecisionEvent, Kind

DECISIONS = {Kind.GRANTED, Kind.NOT_MATCHED, Kind.WRONG_FLIGHT, Kind.MATCHED_HELD,
             Kind.PRESENTATION_ATTACK, Kind.PAD_STAFFED}
THERMAL = {Kind.THERMAL_PASS, Kind.REFERRED, Kind.UNRELIABLE}
# what the live summary says for each decision and gallery reason (plain words, no ids)
SAY = {Kind.GRANTED: "granted: face matched an opted-in traveller, gate opens",
       Kind.NOT_MATCHED: "not matched: sent to the staffed lane",
       Kind.WRONG_FLIGHT: "not this flight: sent to the staffed lane",
       Kind.MATCHED_HELD: "matched, but held for secondary screening",
       Kind.PRESENTATION_ATTACK: "PRESENTATION ATTACK (thermal PAD): no gallery search, no "
                                 "grant; staff alert without identity",
       Kind.PAD_STAFFED: "liveness not established: sent to the staffed lane",
       Kind.THERMAL_PASS: "temperature normal",
       Kind.REFERRED: "REFER: staff alert for secondary screening (no identity attached)",
       Kind.UNRELIABLE: "temperature reading unusable"}
REASONS = {"empty": "no opted-in template on file", "below_threshold": "no template close enough",
           "ambiguous": "two templates too close to call",
           "inconsistent": "the frames did not agree on one traveller",
           "no_token": "no boarding key shown (token mode: no 1:N search)",
           **{k: v.removesuffix(": staffed lane") for k, v in REFUSALS.items()}}


@dataclass
class StepResult:
    step: str
    expected: str
    decision: str = "none"
    thermal: str = "none"
    boarded: bool = False
    ok: bool = False
    reason: str = ""  # the decision's reason code (e.g. no_token, token_withdrawn)
    notes: list[str] = field(default_factory=list)


class Walks:
    """Walk-ups on a Stage (demo.stage), narrated through `say`."""

    def __init__(self, stage, say: Callable[[str], None]) -> None:
        self.stage = stage
        self.say = say

    def walk(self, name: str, photo: int, canthus_c: float, expected: str,
             board: bool, thermal_overlay: str | None = None) -> StepResult:
        """One traveller walks up; collect the lane's decision, the thermal result and, for a
        grant, the passage (the traveller then goes through and leaves the scene)."""
        stage, scene = self.stage, self.stage.scene
        result = StepResult(name, expected)
        stage.wait(lambda: stage.lane_state() == "idle" and not scene.active(), 20,
                   "the lane did not return to idle")
        self.drain()
        w = scene.walk(photo, canthus_c, approach_s=1.5, dwell_s=6.0,
                       thermal_overlay=thermal_overlay)  # e.g. a print held up (demo.pad_step)
        end = time.monotonic() + w.approach_s + w.dwell_s + 2.0
        passed = pass_sent = False
        while time.monotonic() < end:
            if (result.decision != "none" and result.thermal != "none"
                    and (passed or result.decision != "granted" or not board)):
                break
            ev = self.next(end)
            if ev is None:
                break
            why = f" ({REASONS.get(ev.reason, ev.reason)})" if ev.reason else ""
            words = SAY.get(ev.kind, ev.kind.value)
            if ev.kind in DECISIONS and result.decision == "none":
                result.decision, result.reason = ev.kind.value, ev.reason
                self.say(f"  lane A: {words}{why}")
            elif ev.kind in DECISIONS:
                result.notes.append(f"extra decision {ev.kind.value}")
                self.say(f"  lane A: extra decision {ev.kind.value}{why}")
            elif ev.kind in THERMAL and result.thermal == "none":
                result.thermal = ev.kind.value
                self.say(f"  thermal: {words}")
            elif ev.kind is Kind.PASSAGE:
                passed = True
                result.boarded = True
                self.say("  walked through the gate: boarded, template deleted")
                scene.finish(w)
            if (result.decision == "granted" and board and not pass_sent
                    and result.thermal != "none"):
                pass_sent = True  # screened and granted: the traveller walks through
                stage.sim_pass("A")
        stage.wait(lambda: scene.done(w), 15, "the traveller did not leave")
        return result

    def next(self, end: float) -> DecisionEvent | None:
        try:
            return self.stage.events.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            return None

    def drain(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self.stage.events.get_nowait()
