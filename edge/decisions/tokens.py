"""Token mode at the lanes: what each lane's presenting face is compared with, and when a lane
decides with no comparison at all.

A traveller enrolled in token mode holds the only key to their template (edge.consent.sealed).
Their token reaches a lane from the visible camera (a QR code, edge.capture.codes), a serial
scanner (edge.capture.scanner) or a keyboard-wedge scanner on the kiosk page; `submit` queues it
from any thread. On the inference thread (`verdict`, called by the pipeline for every lane at
every tick) the token is opened: its consent is checked, then its one template is unsealed into
memory and held for that lane for at most `hold_s` until a face presents there. The lane's
presenting track is then compared 1:1 with it at the 1:1 operating point (vision.match_threshold,
FAR 1e-4 on LFW), through the same multi-frame evidence as the gallery (edge.decisions.evidence:
a strong frame grants alone, else the fused frames decide). The template is zeroed as soon as
the lane has decided on that presentation (or the hold runs out, or the daemon stops).

* mode `token`: no token, no comparison: a face without one waits, and at the end of the
  presenting window goes to the staffed lane (reason `no_token`). No 1:N search ever runs.
* mode `both`: the token when one is held for the lane, else the gallery (1:N). A token that
  arrives while gallery evidence is being gathered replaces it (that evidence is wiped).
* A refused token (not ours, damaged, unknown, withdrawn, used, expired, altered, another
  flight) raises a lane alert saying so and sends the lane's next presentation to the staffed
  lane (`wrong_flight` for another flight) without embedding or comparing anything.

Nothing here logs or keeps a token's text; only its SHA-256, in memory, to ignore a repeat of
the token already held.
"""

from __future__ import annotations

import hashlib
import queue
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import structlog

from edge.consent.gallery import MatchResult
from edge.consent.sealed import REFUSALS, Unsealed
from edge.consent.token_format import TokenError
from edge.decisions.evidence import EvidenceBook, Verdict
from edge.decisions.lanes import LaneMachine
from foundation.clock import Clock
from foundation.errors import ConsentGateError

log = structlog.get_logger(__name__)

NO_TOKEN = "no_token"  # token mode: the traveller showed no token in the presenting window
Mode = Literal["gallery", "token", "both"]
Opener = Callable[[str], Unsealed]  # token text -> its unsealed template, or TokenError
DRAIN_PER_TICK = 8


class MatcherLike(Protocol):
    """A matcher (edge.consent.gallery.Gallery, or a lane's 1:1 token): probe in, result out."""

    def match(self, probe: np.ndarray) -> MatchResult: ...


class TokenHooks(Protocol):
    """What the pipeline asks of token handling (TokenLanes, or NoTokens on a gallery gate)."""

    def attach(self, evidence: EvidenceBook) -> TokenHooks: ...
    def matcher(self, lane: str, fallback: MatcherLike) -> MatcherLike | None: ...
    def verdict(self, lane: str, machine: LaneMachine) -> tuple[int, Verdict] | None: ...


class NoTokens:
    """A gallery gate: every lane matches 1:N, nothing else happens."""

    mode: Mode = "gallery"

    def attach(self, evidence: EvidenceBook) -> NoTokens:
        return self

    def matcher(self, lane: str, fallback: MatcherLike) -> MatcherLike | None:
        return fallback

    def verdict(self, lane: str, machine: LaneMachine) -> tuple[int, Verdict] | None:
        return None


@dataclass
class _Held:
    digest: bytes  # SHA-256 of the normalised token text, to ignore repeats
    since: float  # monotonic
    unsealed: Unsealed | None  # None: the token was refused
    reason: str = ""  # the refusal's reason code
    used: bool = field(default=False)  # a presentation has been compared with it


class _OneToOne:
    """A lane's matcher while a token is held: 1:1 with that one template."""

    def __init__(self, unsealed: Unsealed, threshold: float, clock: Clock) -> None:
        self._unsealed = unsealed
        self._threshold = threshold
        self._clock = clock

    def match(self, probe: np.ndarray) -> MatchResult:
        return self._unsealed.verify(probe, self._threshold, self._clock.now())


def _digest(text: str) -> bytes:
    return hashlib.sha256(re.sub(r"\s+", "", text).upper().encode("utf-8", "replace")).digest()


class TokenLanes:
    """Tokens held per lane for a token or both gate (see the module docstring)."""

    def __init__(self, mode: Mode, opener: Opener, clock: Clock, lanes: Sequence[str], *,
                 threshold: float, hold_s: float,
                 alert: Callable[[str, str], None] | None = None, inbox: int = 32) -> None:
        if mode not in ("token", "both"):
            raise ValueError("TokenLanes serves token and both gates; use NoTokens otherwise")
        self.mode: Mode = mode
        self._open = opener
        self._clock = clock
        self.lanes = tuple(lanes)
        self.threshold = float(threshold)
        self.hold_s = float(hold_s)
        self._alert = alert
        self._inbox: queue.Queue[tuple[str, str, str]] = queue.Queue(inbox)
        self._held: dict[str, _Held] = {}
        self._evidence: EvidenceBook | None = None
        self.open_seconds: list[float] = []  # how long each token took to open (bench)

    def attach(self, evidence: EvidenceBook) -> TokenLanes:
        """The pipeline's evidence book: a lane's gallery evidence is wiped when a token
        arrives for it."""
        self._evidence = evidence
        return self

    # -- any thread --------------------------------------------------------------------------
    def submit(self, text: str, lane: str | None = None, source: str = "kiosk") -> bool:
        """Queue a token read at `lane` (None: the only lane); False when the lane is unknown
        or the queue is full (the reader may retry). The text is never logged."""
        if lane is None and len(self.lanes) == 1:
            lane = self.lanes[0]
        if lane not in self.lanes or not isinstance(text, str):
            log.warning("token_lane_unknown", source=source)
            return False
        try:
            self._inbox.put_nowait((lane, text, source))
        except queue.Full:
            log.warning("token_inbox_full", lane=lane, source=source)
            return False
        return True

    # -- the inference thread ----------------------------------------------------------------
    def matcher(self, lane: str, fallback: MatcherLike) -> MatcherLike | None:
        """The matcher for the lane's presenting face now: 1:1 with the held token's template,
        the gallery (`both`, no token held), or None: do not embed or compare (no token in
        token mode, or a refused token that `verdict` turns into a decision)."""
        held = self._held.get(lane)
        if held is not None and held.unsealed is not None:
            held.used = True
            return _OneToOne(held.unsealed, self.threshold, self._clock)
        if held is not None:
            return None
        return fallback if self.mode == "both" else None

    def verdict(self, lane: str, machine: LaneMachine) -> tuple[int, Verdict] | None:
        """Open newly read tokens, wipe those done with, and a decision the lane takes with no
        comparison, for its presenting track: a refused token's reason, or `no_token` (token
        mode) when its presenting window ends without one."""
        self._drain()
        held = self._held.get(lane)
        if held is not None and ((held.used and not machine.wants_match) or (
                not held.used and self._clock.monotonic() - held.since > self.hold_s)):
            self._drop(lane, "decided" if held.used else "not_presented")
            held = None
        track = machine.track_id
        if not machine.wants_match or track is None:
            return None
        if held is not None and held.unsealed is None:
            self._drop(lane, "refused")
            return track, (None, held.reason)
        if held is None and self.mode == "token" and machine.match_due:
            return track, (None, NO_TOKEN)
        return None

    def held(self, lane: str) -> str | None:
        """What the lane holds: 'template', a refusal reason, or None (tests, health)."""
        held = self._held.get(lane)
        return None if held is None else ("template" if held.unsealed else held.reason)

    def close(self) -> None:
        """Wipe every held template (the daemon stops)."""
        for lane in list(self._held):
            self._drop(lane, "stopped")
        while True:
            try:
                self._inbox.get_nowait()
            except queue.Empty:
                return

    def _drain(self) -> None:
        for _ in range(DRAIN_PER_TICK):
            try:
                lane, text, source = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._take(lane, text, source)

    def _take(self, lane: str, text: str, source: str) -> None:
        digest = _digest(text)
        old = self._held.get(lane)
        if old is not None and old.digest == digest:
            return  # the token already held (a scanner's repeat, a code still in view)
        t0 = time.perf_counter()
        try:
            held = _Held(digest, self._clock.monotonic(), self._open(text))
        except TokenError as exc:
            held = _Held(digest, self._clock.monotonic(), None, exc.reason)
        except ConsentGateError as exc:  # the store failed: refused, never a crash of the loop
            log.error("token_open_failed", lane=lane, error=type(exc).__name__)
            held = _Held(digest, self._clock.monotonic(), None, "token_unavailable")
        self.open_seconds.append(time.perf_counter() - t0)
        del self.open_seconds[:-1000]
        if old is not None:
            self._drop(lane, "replaced")
        self._held[lane] = held
        if self._evidence is not None:
            self._evidence.drop(lane)  # evidence gathered for the gallery does not count
        if held.unsealed is None:
            log.info("token_refused", lane=lane, source=source, reason=held.reason)
            if self._alert is not None:
                self._alert(lane, "boarding key refused: "
                            + REFUSALS.get(held.reason, held.reason))
        else:
            log.info("token_opened", lane=lane, source=source,
                     ms=round(self.open_seconds[-1] * 1000, 2))

    def _drop(self, lane: str, why: str) -> None:
        held = self._held.pop(lane, None)
        if held is not None and held.unsealed is not None:
            held.unsealed.wipe()
            log.info("token_wiped", lane=lane, why=why)
