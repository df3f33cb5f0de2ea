"""The lane decision state machine: pure, driven by an injected Clock, one per lane.

    idle -> presenting -> granted | not_matched | wrong_flight | refer -> (passage | timeout)
         -> idle
    any  -> manual (gate controller unavailable: no grants at all) -> idle when it is back

Inputs are calls (`present`, `liveness`, `match`, `thermal`, `passage`, `tailgating`,
`gate_down`, `gate_up`, `track_lost`, `tick`); each returns the actions for the daemon to carry out
(`OpenGate`, `DenyGate`, `MarkBoarded`) and the `DecisionEvent`s to publish. One decision per
track. A traveller the gallery found enrolled for another flight or day (match reason
`wrong_flight`) is told "not this flight" and sent to the staffed lane. A thermal `refer`
raises an alert without identity and blocks boarding only when the rules say so. With
`pad_required` no match is taken before the track's fused PAD (edge.decisions.liveness) lets it
go on: an attack, or PAD that cannot decide, sends the traveller to staff unsearched. The machine
does no I/O, so every path is unit-tested with a FakeClock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, TypeVar

from edge.decisions.events import BOARDED, DecisionEvent, Kind
from foundation.clock import Clock
from wire.gate import new_grant_id as new_gate_grant_id


class LaneState(StrEnum):
    IDLE = "idle"
    PRESENTING = "presenting"
    GRANTED = "granted"
    NOT_MATCHED = "not_matched"
    WRONG_FLIGHT = "wrong_flight"  # enrolled for another flight or day: staffed lane
    REFER = "refer"
    MANUAL = "manual"


@dataclass(frozen=True)
class LaneRules:
    presenting_timeout_s: float = 5.0
    grant_ttl_ms: int = 8000
    hold_s: float = 3.0  # how long a not_matched / wrong_flight / refer result stays shown
    thermal_enabled: bool = False
    refer_blocks_boarding: bool = False
    pad_required: bool = False  # no match before `liveness` says live (or unknown allowed)


@dataclass(frozen=True)
class OpenGate:
    lane: str
    grant_id: str
    ttl_ms: int


@dataclass(frozen=True)
class DenyGate:
    lane: str


@dataclass(frozen=True)
class MarkBoarded:
    consent_id: str


Action = OpenGate | DenyGate | MarkBoarded | DecisionEvent

PadVerdict = Literal["live", "allow", "attack", "staffed"]
WRONG_FLIGHT = "wrong_flight"  # the match reason that means "enrolled for another flight"
_HELD = (LaneState.NOT_MATCHED, LaneState.WRONG_FLIGHT, LaneState.REFER)
_THERMAL_KIND = {"pass": Kind.THERMAL_PASS, "refer": Kind.REFERRED,
                 "unreliable": Kind.UNRELIABLE}
_MAX_REMEMBERED = 1024
_K = TypeVar("_K")
_V = TypeVar("_V")


class LaneMachine:
    def __init__(self, lane: str, rules: LaneRules, clock: Clock,
                 new_grant_id: Callable[[], str] | None = None, *,
                 start_manual: bool = False) -> None:
        self.lane = lane
        self.rules = rules
        self._clock = clock
        # a grant id carries its issue time (the clock's monotonic ms: CLOCK_MONOTONIC on the
        # box), so the gate controller refuses it once older than its ttl, however replayed
        self._new_grant_id = new_grant_id or (lambda: new_gate_grant_id(clock.monotonic()))
        # a daemon starts manual until the gate controller first answers (no event: no fault)
        self.state = LaneState.MANUAL if start_manual else LaneState.IDLE
        self._since = clock.monotonic()
        self.track_id: int | None = None
        self._match: tuple[str | None, str] | None = None  # (consent_id, reason)
        self._thermal: str | None = None
        self._live = False  # PAD let this presentation go on to the match
        self.message = ""  # what the lane shows the traveller (no identity), with the state
        self._grant_id: str | None = None
        self._decided: OrderedDict[int, None] = OrderedDict()
        self._screened: OrderedDict[int, None] = OrderedDict()
        self._grants: OrderedDict[str, tuple[str, float]] = OrderedDict()  # grant -> consent

    # -- helpers -----------------------------------------------------------------------------
    def _event(self, kind: Kind, reason: str = "", track: int | None = None) -> DecisionEvent:
        return DecisionEvent(kind, self.lane, self.state.value, reason, track)

    def _enter(self, state: LaneState, message: str = "") -> None:
        self.state = state
        self.message = message
        self._since = self._clock.monotonic()

    def _reset(self) -> None:
        self._enter(LaneState.IDLE)
        self.track_id = None
        self._match = None
        self._thermal = None
        self._live = False
        self._grant_id = None

    @staticmethod
    def _remember(store: OrderedDict[_K, _V], key: _K, value: _V) -> None:
        store[key] = value
        while len(store) > _MAX_REMEMBERED:
            store.popitem(last=False)

    def decided(self, track_id: int) -> bool:
        return track_id in self._decided

    @property
    def wants_match(self) -> bool:
        """True while the presenting track still needs a gallery match."""
        return (self.state is LaneState.PRESENTING and self._match is None
                and (self._live or not self.rules.pad_required))

    @property
    def wants_liveness(self) -> bool:
        """True while the presenting track still needs its PAD decision (pad_required)."""
        return (self.rules.pad_required and self.state is LaneState.PRESENTING
                and self.track_id is not None and not self._live)

    @property
    def match_due(self) -> bool:
        """True when the presenting track still needs a match and the next tick() would time
        it out: the last moment to decide on the evidence gathered so far."""
        return self.wants_match and (self._clock.monotonic() - self._since
                                     > self.rules.presenting_timeout_s)

    # -- inputs ------------------------------------------------------------------------------
    def present(self, track_id: int) -> list[Action]:
        if self.state is not LaneState.IDLE or track_id in self._decided:
            return []
        self._enter(LaneState.PRESENTING)
        self.track_id = track_id
        return [self._event(Kind.PRESENTED, track=track_id)]

    def match(self, track_id: int, consent_id: str | None, reason: str = "") -> list[Action]:
        if (self.state is not LaneState.PRESENTING or track_id != self.track_id
                or self._match is not None or (self.rules.pad_required and not self._live)):
            return []  # never a match before PAD let the presentation go on
        self._match = (consent_id, reason)
        return self._try_decide()

    def thermal(self, track_id: int, status: str, reason: str = "") -> list[Action]:
        """A fused thermal decision for a track: counted once; alerts carry no identity."""
        if status not in _THERMAL_KIND:
            raise ValueError(f"unknown thermal status {status!r}")
        if track_id in self._screened:
            return []
        self._remember(self._screened, track_id, None)
        out: list[Action] = [self._event(_THERMAL_KIND[status], reason)]
        if self.state is LaneState.PRESENTING and track_id == self.track_id:
            self._thermal = status
            out += self._try_decide()
        return out

    def liveness(self, track_id: int, verdict: PadVerdict, reason: str = "") -> list[Action]:
        """The presenting track's fused PAD verdict: `live` / `allow` (unknown, allowed by the
        settings) let the match go on; `attack` and `staffed` deny without a gallery search,
        with an event that carries no identity."""
        if not self.wants_liveness or track_id != self.track_id:
            return []
        if verdict in ("live", "allow"):
            self._live = True
            return [self._event(Kind.PAD_LIVE, reason if verdict == "allow" else "", track_id)]
        self._remember(self._decided, track_id, None)
        if verdict == "attack":
            self._enter(LaneState.NOT_MATCHED, "please see a member of staff")
            return [DenyGate(self.lane), self._event(Kind.PRESENTATION_ATTACK, reason, track_id)]
        self._enter(LaneState.NOT_MATCHED, "please use the staffed lane")
        return [DenyGate(self.lane), self._event(Kind.PAD_STAFFED, reason, track_id)]

    def passage(self, grant_id: str | None) -> list[Action]:
        out: list[Action] = []
        entry = self._grants.pop(grant_id, None) if grant_id else None
        if entry is not None:
            out.append(MarkBoarded(entry[0]))
        if self.state is LaneState.GRANTED and grant_id == self._grant_id:
            self._reset()
        out.append(self._event(Kind.PASSAGE, BOARDED if entry is not None else "no face grant"))
        return out

    def tailgating(self) -> list[Action]:
        return [self._event(Kind.TAILGATING, "second passage on one grant")]

    def gate_down(self, reason: str) -> list[Action]:
        if self.state is LaneState.MANUAL:
            return []
        if self.track_id is not None and self.state is LaneState.PRESENTING:
            self._remember(self._decided, self.track_id, None)
        self._reset()
        self._grants.clear()
        self._enter(LaneState.MANUAL)
        return [self._event(Kind.MANUAL, reason)]

    def gate_up(self) -> list[Action]:
        if self.state is not LaneState.MANUAL:
            return []
        self._reset()
        return [self._event(Kind.RESTORED)]

    def gate_fault(self, reason: str) -> list[Action]:
        """A command to the gate failed: the grant is void, the lane goes manual."""
        return self.gate_down(reason)

    @property
    def granted(self) -> bool:
        return self.state is LaneState.GRANTED

    def grant_refused(self, reason: str) -> list[Action]:
        """The controller refused the grant while its link is up (`busy`: the lane is still
        open for a supervisor's override): the grant is void, the traveller goes to staff and
        the lane stays in service (never manual)."""
        if self._grant_id is not None:
            self._grants.pop(self._grant_id, None)
        track = self.track_id
        self._reset()
        self._enter(LaneState.NOT_MATCHED, "lane held open by staff: see staff")
        return [self._event(Kind.NOT_MATCHED, reason, track)]

    def track_lost(self, track_id: int, successor: int | None = None) -> list[Action]:
        """The presenting track is gone. When the tracker lost it but another undecided track
        stands in the zone (`successor`, e.g. the same person re-acquired), that track takes
        over the presentation without a new event; otherwise the lane times out to idle."""
        if self.state is LaneState.PRESENTING and track_id == self.track_id:
            self._remember(self._decided, track_id, None)
            if successor is not None and successor not in self._decided:
                self.track_id = successor
                self._live = False  # PAD starts again on the new track
                return []
            self._reset()
            return [self._event(Kind.TIMEOUT, "left the gate zone before a decision")]
        return []

    def tick(self) -> list[Action]:
        now = self._clock.monotonic()
        elapsed = now - self._since
        out: list[Action] = []
        for grant, (_, expires) in list(self._grants.items()):
            if now > expires:
                del self._grants[grant]
        if self.state is LaneState.PRESENTING and elapsed > self.rules.presenting_timeout_s:
            track = self.track_id
            if self._match is not None and self._match[0] is not None:
                # matched but still waiting for a blocking thermal decision: staffed lane
                self._thermal = "unreliable"
                return self._try_decide()
            if track is not None:
                self._remember(self._decided, track, None)
            self._reset()
            out.append(self._event(Kind.TIMEOUT, "no decision in time", track))
        elif (self.state is LaneState.GRANTED
              and elapsed > self.rules.grant_ttl_ms / 1000.0):
            self._reset()
            out.append(self._event(Kind.TIMEOUT, "grant not used"))
        elif self.state in _HELD and elapsed > self.rules.hold_s:
            self._reset()
        return out

    # -- decision ----------------------------------------------------------------------------
    def _try_decide(self) -> list[Action]:
        if self._match is None or self.track_id is None:
            return []
        consent_id, reason = self._match
        track = self.track_id
        blocking = self.rules.thermal_enabled and self.rules.refer_blocks_boarding
        if consent_id is not None and blocking and self._thermal is None:
            return []  # wait for the thermal decision (tick() bounds the wait)
        self._remember(self._decided, track, None)
        if consent_id is None and reason == WRONG_FLIGHT:
            self._enter(LaneState.WRONG_FLIGHT)
            return [DenyGate(self.lane), self._event(Kind.WRONG_FLIGHT,
                                                     "not this flight: staffed lane", track)]
        if consent_id is None:
            self._enter(LaneState.NOT_MATCHED)
            return [DenyGate(self.lane), self._event(Kind.NOT_MATCHED, reason, track)]
        if blocking and self._thermal != "pass":
            self._enter(LaneState.REFER)
            why = "thermal refer" if self._thermal == "refer" else "thermal reading unusable"
            return [DenyGate(self.lane), self._event(Kind.MATCHED_HELD, why, track)]
        grant = self._new_grant_id()
        self._grant_id = grant
        ttl = self.rules.grant_ttl_ms
        self._remember(self._grants, grant,
                       (consent_id, self._clock.monotonic() + 2 * ttl / 1000.0))
        self._enter(LaneState.GRANTED)
        return [OpenGate(self.lane, grant, ttl), self._event(Kind.GRANTED, "", track)]
