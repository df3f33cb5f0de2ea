"""Per-track PAD fusion: is the presenting track a live face, over several of its frames?

One frame of presentation-attack detection (edge.screening.pad) can be wrong: a noisy frame,
a turned head, a hand. So each lane's presenting track gathers PAD frames in a
`LivenessFusion`:

* a frame is *measured* when PAD said `live` or `attack`; `unknown` frames (face too small in
  the thermal frame, out of its view, no thermal frame) are counted, never fused;
* once `frames` (N) measured frames are in, the last N decide, re-checked at every new one:
  `attack` when attacks are a strict majority of them; `live` when at least `live_min` (M, a
  majority of N) are live and none is a *confident* attack (liveness score at or below
  `confident_attack_score`); otherwise the window slides on;
* after `max_frames` frames without a decision: `unknown`, reason `inconclusive` when some
  frames were measured (mixed evidence: always the staffed lane) or the commonest unknown
  reason when none was (the settings' unknown policy decides).

A decision is final for the track. Only decisions, scores and reason codes are kept, never a
frame: nothing here can be turned back into an image.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from foundation.settings_pad import PadSettings

PadStatus = Literal["live", "attack", "unknown"]
INCONCLUSIVE = "inconclusive"  # frames measured, neither live nor attack: staffed lane
NO_FRAMES = "no_frames"  # nothing seen at all (max_frames of nothing cannot happen)


@dataclass(frozen=True)
class LivenessRules:
    frames: int = 5  # N: measured frames fused
    live_min: int = 3  # M: live frames among the last N for `live` (a majority of N)
    confident_attack_score: float = 0.05  # an attack frame at or below this vetoes `live`
    max_frames: int = 20  # frames looked at before `unknown`

    def __post_init__(self) -> None:
        if not 1 <= self.frames <= 30 or not self.frames / 2 < self.live_min <= self.frames:
            raise ValueError("liveness needs 1-30 frames and live_min a majority of them")
        if self.max_frames < self.frames or not 0 <= self.confident_attack_score < 1:
            raise ValueError("max_frames must be at least frames; the score in [0, 1)")

    @classmethod
    def from_settings(cls, pad: PadSettings) -> LivenessRules:
        return cls(pad.fuse_frames, pad.live_frames, pad.confident_attack_score,
                   pad.max_frames)


@dataclass(frozen=True)
class Liveness:
    """A track's fused PAD decision and what it rests on (counts of the deciding window)."""

    status: PadStatus
    reason: str
    frames: int  # frames looked at, measured or not
    live: int  # live frames in the deciding window
    attack: int  # attack frames in the deciding window


class LivenessFusion:
    """The PAD frames of one presenting track; `add` returns the decision once there is one."""

    def __init__(self, rules: LivenessRules) -> None:
        self.rules = rules
        self._window: deque[tuple[bool, float, str]] = deque(maxlen=rules.frames)
        self._unknown: Counter[str] = Counter()
        self._frames = 0
        self._measured = 0
        self.decision: Liveness | None = None

    def add(self, decision: str, score: float, reason: str) -> Liveness | None:
        """One frame's PAD result (`live` / `attack` / `unknown`, score in [0, 1], reason)."""
        if self.decision is not None:
            return self.decision
        self._frames += 1
        if decision in ("live", "attack"):
            self._window.append((decision == "attack", float(score), reason))
            self._measured += 1
            self.decision = self._decide_window()
        else:
            self._unknown[reason or "unknown"] += 1
        if self.decision is None and self._frames >= self.rules.max_frames:
            self.decision = self._give_up()
        return self.decision

    def _counts(self) -> tuple[int, int]:
        attacks = sum(1 for attack, _, _ in self._window if attack)
        return len(self._window) - attacks, attacks

    def _decide_window(self) -> Liveness | None:
        rules = self.rules
        if len(self._window) < rules.frames:
            return None
        live, attacks = self._counts()
        if 2 * attacks > rules.frames:
            reasons = Counter(r for attack, _, r in self._window if attack)
            return Liveness("attack", reasons.most_common(1)[0][0], self._frames, live,
                            attacks)
        confident = any(attack and score <= rules.confident_attack_score
                        for attack, score, _ in self._window)
        if live >= rules.live_min and not confident:
            return Liveness("live", "live", self._frames, live, attacks)
        return None

    def _give_up(self) -> Liveness:
        live, attacks = self._counts()
        if self._measured:
            return Liveness("unknown", INCONCLUSIVE, self._frames, live, attacks)
        reason = self._unknown.most_common(1)[0][0] if self._unknown else NO_FRAMES
        return Liveness("unknown", reason, self._frames, 0, 0)
