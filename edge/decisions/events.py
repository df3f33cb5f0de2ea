"""Decision events: what the lanes decided, without biometrics, and where each one goes.

A `DecisionEvent` carries the lane, the kind of decision, the lane state after it and a short
reason; never an image, an embedding, a name or a boarding reference. `EventBus` fans each
event out to its sinks (counters, kiosk board, log, metrics); a failing sink is logged and
never stops the others or the lane.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog

log = structlog.get_logger(__name__)


class Kind(StrEnum):
    PRESENTED = "presented"  # a track entered the gate zone
    GRANTED = "granted"  # matched an opted-in traveller, gate opened
    MATCHED_HELD = "matched_held"  # matched, but a thermal refer blocks boarding (settings)
    NOT_MATCHED = "not_matched"  # sent to the staffed lane
    WRONG_FLIGHT = "wrong_flight"  # enrolled for another flight or day: staffed lane
    THERMAL_PASS = "thermal_pass"
    REFERRED = "referred"  # secondary screening alert, no identity
    UNRELIABLE = "unreliable"  # thermal reading unusable
    PASSAGE = "passage"
    TAILGATING = "tailgating"
    TIMEOUT = "timeout"  # presenting without a decision for too long, or grant unused
    MANUAL = "manual"  # gate controller unavailable: staff operate the lane
    RESTORED = "restored"  # gate controller back
    FAULT = "fault"
    PAD_LIVE = "pad_live"  # PAD: a live face (or unknown, allowed by settings): match goes on
    PRESENTATION_ATTACK = "presentation_attack"  # PAD: an attack: staff alert, no search
    PAD_STAFFED = "pad_staffed"  # PAD undecided, or required and none runs: staffed lane


# Which anonymous counter fields (telemetry `counts/1`) each kind increments.
COUNTER_FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.PRESENTED: ("presented",),
    Kind.GRANTED: ("matched", "gates_opened"),
    Kind.MATCHED_HELD: ("matched",),
    Kind.NOT_MATCHED: ("not_matched",),
    Kind.WRONG_FLIGHT: ("not_matched", "wrong_flight"),  # a staffed-lane decision, counted too
    Kind.THERMAL_PASS: ("temperature_screened",),
    Kind.REFERRED: ("temperature_screened", "referred"),
    Kind.UNRELIABLE: ("unreliable",),
    Kind.PASSAGE: ("passages",),
    Kind.TAILGATING: ("tailgating_alarms",),
    Kind.MANUAL: ("faults",),
    Kind.FAULT: ("faults",),
    Kind.PRESENTATION_ATTACK: ("presentation_attacks",),  # its own outcome of a presentation
    Kind.PAD_STAFFED: ("not_matched",),  # sent to the staffed lane, like any not_matched
}

# The reason a PASSAGE event carries when it closed a face grant (the traveller boarded);
# a passage without a live grant (e.g. a supervisor's override) carries another reason.
BOARDED = "boarded"

# Kinds the kiosk shows as an alert (as well as a state change).
ALERT_KINDS = {Kind.REFERRED, Kind.TAILGATING, Kind.MANUAL, Kind.FAULT, Kind.MATCHED_HELD,
               Kind.PRESENTATION_ATTACK}


@dataclass(frozen=True)
class DecisionEvent:
    kind: Kind
    lane: str
    state: str  # lane state after the event
    reason: str = ""
    track_id: int | None = None  # process-local; logged, never sent to central or the kiosk

    def public(self) -> dict[str, str]:
        """The event as the kiosk and counters may see it (no track id)."""
        return {"kind": self.kind.value, "lane": self.lane, "state": self.state,
                "reason": self.reason}


Sink = Callable[[DecisionEvent], None]


class EventBus:
    def __init__(self, sinks: list[Sink] | None = None) -> None:
        self._sinks: list[Sink] = list(sinks or [])

    def subscribe(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def emit(self, event: DecisionEvent) -> None:
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:
                log.exception("event_sink_failed", kind=event.kind.value, lane=event.lane)


def log_sink(event: DecisionEvent) -> None:
    log.info("lane_decision", kind=event.kind.value, lane=event.lane, state=event.state,
             reason=event.reason, track=event.track_id)


def counters_sink(add: Callable[[str, int], None]) -> Sink:
    """Sink that adds each event's counter fields through `add(field, n)`."""

    def sink(event: DecisionEvent) -> None:
        for name in COUNTER_FIELDS.get(event.kind, ()):
            add(name, 1)

    return sink
