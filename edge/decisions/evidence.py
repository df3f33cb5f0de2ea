"""Evidence from several frames at the gate: up to K good frames of the presenting track decide.

One frame can mislead: motion blur, a turned head, a hand or a collar over the face. So each
lane's presenting track gathers evidence frames (good quality, at least `spacing_s` apart, at
most `frames` of them), each embedded once (the pipeline batches every lane's into one embedder
run) and matched at once:

* a single frame whose match clears the 1:N threshold by `strong_margin` grants at once;
* otherwise, once `frames` are in (or the presenting window is about to end), the embeddings
  are fused (the mean of the mirror-averaged embeddings, re-normalised) and the fused probe is
  matched; it grants only when every evidence frame's top-1 candidate is that same consent,
  else the traveller is not matched (`inconsistent`).

Embeddings live only in this object's buffer, in memory, and are zeroed the moment a decision
is taken or the track goes (`wipe`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from foundation.settings import LanesSettings

INCONSISTENT = "inconsistent"  # the frames' top-1 candidates disagree
Verdict = tuple[str | None, str]  # (consent id to grant, or None; reason)


def _lane_default(field: str) -> Any:
    """The lane settings' default of `field`: the rules' defaults are the settings' own."""
    from foundation.settings import LanesSettings

    return LanesSettings.model_fields[field].default


@dataclass(frozen=True)
class EvidenceRules:
    # good frames fused for one decision (1: the first good frame decides)
    frames: int = _lane_default("evidence_frames")
    spacing_s: float = _lane_default("evidence_spacing_s")  # at least this far apart (capture)
    strong_margin: float = _lane_default("evidence_strong_margin")  # one frame this far above
    # the threshold grants alone

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 10 or self.spacing_s < 0 or not 0 < self.strong_margin < 1:
            raise ValueError("evidence needs 1-10 frames, spacing >= 0 and a margin in (0, 1)")

    @classmethod
    def from_settings(cls, lanes: LanesSettings) -> EvidenceRules:
        return cls(lanes.evidence_frames, lanes.evidence_spacing_s, lanes.evidence_strong_margin)


class Matcher(Protocol):
    def match(self, probe: np.ndarray) -> Any: ...


def _verdict(result: Any) -> Verdict:
    if getattr(result, "reason", None) == "match":
        return getattr(result, "consent_id", None), "match"
    return None, str(getattr(result, "reason", "") or "")


def _top(result: Any) -> str | None:
    """A frame's top-1 candidate (its match when the matcher names no candidate)."""
    return getattr(result, "candidate", None) or getattr(result, "consent_id", None)


class Evidence:
    """The evidence frames of one presenting track on one lane."""

    def __init__(self, track_id: int, rules: EvidenceRules) -> None:
        self.track_id = track_id
        self.rules = rules
        self._buf: np.ndarray | None = None  # (frames, dim) float32 embeddings
        self._n = 0
        self._last: float | None = None
        self._results: list[Any] = []

    @property
    def count(self) -> int:
        return self._n

    @property
    def complete(self) -> bool:
        return self._n >= self.rules.frames

    def due(self, captured: float) -> bool:
        """Whether a good frame captured at `captured` would be taken as evidence."""
        return not self.complete and (self._last is None
                                      or captured - self._last >= self.rules.spacing_s)

    def add(self, embedding: np.ndarray, result: Any, captured: float) -> Verdict | None:
        """Keep one frame's embedding and its match result; a grant when this frame alone is
        far above the threshold, else None (call `decide` once `complete`)."""
        vec = np.asarray(embedding, np.float32).ravel()
        if self._buf is None:
            self._buf = np.zeros((self.rules.frames, vec.shape[0]), np.float32)
        self._buf[self._n] = vec
        self._n += 1
        self._last = captured
        self._results.append(result)
        threshold = float(getattr(result, "threshold", math.nan))
        if (getattr(result, "reason", None) == "match" and math.isfinite(threshold)
                and float(result.score) >= threshold + self.rules.strong_margin):
            return _verdict(result)
        return None

    def decide(self, matcher: Matcher) -> Verdict:
        """The decision on the frames gathered so far (at least one): the fused probe's match,
        granted only when every frame's top-1 candidate agrees with it."""
        if self._n == 0 or self._buf is None:
            raise ValueError("no evidence to decide on")
        if self._n == 1:
            return _verdict(self._results[0])
        fused = self._buf[:self._n].mean(axis=0)
        norm = float(np.linalg.norm(fused))
        if not math.isfinite(norm) or norm < 1e-6:
            fused.fill(0.0)
            return None, INCONSISTENT  # the frames point in opposite directions
        fused /= norm
        try:
            result = matcher.match(fused)
        finally:
            fused.fill(0.0)
        consent_id, reason = _verdict(result)
        if consent_id is not None and any(_top(r) != consent_id for r in self._results):
            return None, INCONSISTENT
        return consent_id, reason

    def wipe(self) -> None:
        """Zero the embeddings and forget the results."""
        if self._buf is not None:
            self._buf.fill(0.0)
        self._buf = None
        self._n = 0
        self._results.clear()


class EvidenceBook:
    """Each lane's evidence for its presenting track (the pipeline's; one thread)."""

    def __init__(self, rules: EvidenceRules) -> None:
        self.rules = rules
        self._lanes: dict[str, Evidence] = {}

    def for_track(self, lane: str, track_id: int) -> Evidence:
        """The lane's evidence for `track_id` (a new track's starts empty: the old is wiped)."""
        evidence = self._lanes.get(lane)
        if evidence is None or evidence.track_id != track_id:
            self.drop(lane)
            evidence = self._lanes[lane] = Evidence(track_id, self.rules)
        return evidence

    def get(self, lane: str) -> Evidence | None:
        return self._lanes.get(lane)

    def drop(self, lane: str) -> None:
        evidence = self._lanes.pop(lane, None)
        if evidence is not None:
            evidence.wipe()

    def sweep(self, presenting: dict[str, int | None]) -> None:
        """Wipe the evidence of lanes whose track no longer needs a match (lane -> the track
        that still does, or None)."""
        for lane in list(self._lanes):
            if presenting.get(lane) != self._lanes[lane].track_id:
                self.drop(lane)
