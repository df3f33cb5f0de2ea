"""PAD in the decision: each lane's presenting track is checked for a live face before any match.

`PadGate.observe` runs once per frame, before the gallery: for every lane whose machine still
wants a PAD decision (`LaneMachine.wants_liveness`) it measures the presenting track's face in
this frame's thermal frame (one detector call for every lane), fuses it into that track's
`LivenessFusion` and, once the fusion decides, hands the lane machine its verdict:

* `live` -> `live` (the match goes on);
* `attack` -> `attack` (DenyGate, a staff alert without identity, `presentation_attacks`);
* `unknown` -> `allow` when `unknown_policy` is `allow` (the match goes on), else `staffed`;
  `inconclusive` (frames measured, neither live nor attack) is always `staffed`;
* no PAD running (`kind == "none"`) where PAD is required -> `staffed` at once.

A frame without a usable thermal frame (none attached, or the calibration's sizes not met)
counts as `unknown` (`no_thermal_frame`); a thermal frame a lane has measured already (a
thermal camera slower than the visible one: the same frame attached again) is not measured
twice, so N fused frames are N thermal frames. A fusion lives only while its track presents; nothing
of a frame is kept.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import structlog

from edge.decisions.lanes import Action, LaneMachine, PadVerdict
from edge.decisions.liveness import INCONCLUSIVE, Liveness, LivenessFusion, LivenessRules
from edge.vision.tracker import Track
from edge.vision.types import Face

log = structlog.get_logger(__name__)

PadKind = Literal["thermal", "visible", "none"]
NO_THERMAL = "no_thermal_frame"
NO_PAD = "no_pad"  # PAD required, none runs on this box


class PadFrame(Protocol):
    """One face's PAD result in one frame (edge.screening.pad.PadResult)."""

    @property
    def decision(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def reason(self) -> str: ...


class PadMeasurer(Protocol):
    """Frame-level PAD (edge.screening.pad.PadDetector)."""

    def measure(self, faces: list[Face], thermal_frame_ck: np.ndarray) -> Sequence[PadFrame]: ...


class LaneHost(Protocol):
    """The pipeline: its lanes (name -> Lane, each with its `machine`) and the thermal
    calibration check of a frame pair (edge.decisions.pipeline.Pipeline)."""

    @property
    def lanes(self) -> Mapping[str, Any]: ...
    def thermal_geometry_problem(self, image: np.ndarray, thermal: np.ndarray) -> str | None: ...


def verdict_of(liveness: Liveness, allow_unknown: bool) -> PadVerdict:
    """What the lane machine does with a fused decision (see the module docstring)."""
    if liveness.status == "live":
        return "live"
    if liveness.status == "attack":
        return "attack"
    return "allow" if allow_unknown and liveness.reason != INCONCLUSIVE else "staffed"


class PadGate:
    """Per-lane PAD of the presenting tracks; `observe` returns the lane machines' actions."""

    def __init__(self, detector: PadMeasurer | None, rules: LivenessRules, *,
                 allow_unknown: bool = False, kind: PadKind = "thermal") -> None:
        if (detector is None) != (kind == "none"):
            raise ValueError("a PadGate has a detector exactly when some PAD runs")
        self.detector = detector
        self.rules = rules
        self.allow_unknown = allow_unknown
        self.kind: PadKind = kind
        self._fusions: dict[str, tuple[int, LivenessFusion]] = {}
        # lane -> the thermal frame it measured last, weakly (never kept alive here)
        self._seen: dict[str, weakref.ref[np.ndarray]] = {}

    def observe(self, host: LaneHost, in_zone: Mapping[str, list[Track]], image: np.ndarray,
                thermal: np.ndarray | None) -> list[Action]:
        """One frame of the pipeline `host`: the lanes' tracks in their zones, the visible
        image and the thermal frame attached to it (None: none)."""
        if thermal is not None and host.thermal_geometry_problem(image, thermal) is not None:
            thermal = None  # mis-mapped pixels: an unknown frame (the pipeline logs why)
        return self.step({name: lane.machine for name, lane in host.lanes.items()}, in_zone,
                         thermal)

    def step(self, machines: Mapping[str, LaneMachine], in_zone: Mapping[str, list[Track]],
             thermal: np.ndarray | None) -> list[Action]:
        """One frame: `thermal` is None when this frame has no usable thermal frame."""
        wanting = {name: m.track_id for name, m in machines.items()
                   if m.wants_liveness and m.track_id is not None}
        self._fusions = {name: entry for name, entry in self._fusions.items()
                         if wanting.get(name) == entry[0]}
        out: list[Action] = []
        if self.detector is None:
            for name, track_id in wanting.items():
                out += machines[name].liveness(track_id, "staffed", NO_PAD)
            return out
        todo: list[tuple[str, int, Face]] = []
        for name, track_id in wanting.items():
            face = next((t.face for t in in_zone.get(name, ()) if t.track_id == track_id), None)
            if face is None:
                continue
            seen = self._seen.get(name)
            if thermal is not None and name in self._fusions and seen is not None \
                    and seen() is thermal:
                continue  # the thermal frame this lane measured last (a slower thermal camera)
            todo.append((name, track_id, face))
        if not todo:
            return out
        results = self._measure([face for _, _, face in todo], thermal)
        for (name, track_id, _), result in zip(todo, results, strict=True):
            if thermal is not None:
                self._seen[name] = weakref.ref(thermal)
            entry = self._fusions.get(name)
            if entry is None:
                entry = self._fusions[name] = (track_id, LivenessFusion(self.rules))
            decided = entry[1].add(*result)
            if decided is None:
                continue
            del self._fusions[name]
            verdict = verdict_of(decided, self.allow_unknown)
            log.info("pad_decision", lane=name, status=decided.status, reason=decided.reason,
                     verdict=verdict, frames=decided.frames, live=decided.live,
                     attack=decided.attack)
            out += machines[name].liveness(track_id, verdict, decided.reason)
        return out

    def _measure(self, faces: list[Face], thermal: np.ndarray | None
                 ) -> list[tuple[str, float, str]]:
        unknown = [("unknown", 0.5, NO_THERMAL)] * len(faces)
        if thermal is None or self.detector is None:
            return unknown
        try:
            results = list(self.detector.measure(faces, thermal))
        except Exception as exc:  # a bad thermal frame is an unknown frame, never fatal
            log.warning("pad_frame_dropped", error=str(exc)[:200])
            return unknown
        if len(results) != len(faces):
            return unknown
        return [(str(r.decision), float(r.score), str(r.reason)) for r in results]
