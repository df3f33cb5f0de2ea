"""What the kiosk's lane board shows of the daemon's decisions: states, alerts and counts.

`board_sink(board)` is an event-bus sink: alerts for the alert kinds, one count per decision
(`granted` when a face grant opens the gate, `boarded` only when the passage sensor confirms
that grant was used: a grant nobody walks through is not a boarding). `board_state` maps a lane
machine state to the board's.
"""

from __future__ import annotations

from edge.decisions.events import ALERT_KINDS, BOARDED, DecisionEvent, Kind, Sink
from edge.kiosk.board import LaneBoard

# lane machine state -> kiosk board state
BOARD_STATE = {"idle": "idle", "presenting": "presenting", "granted": "granted",
               "not_matched": "staffed_lane", "wrong_flight": "wrong_flight", "refer": "refer",
               "manual": "manual", "emergency": "emergency"}
BOARD_ALERTS = {Kind.REFERRED: ("refer", "refer for secondary screening (thermal)"),
                Kind.MATCHED_HELD: ("refer", "refer for secondary screening before boarding"),
                Kind.TAILGATING: ("tailgating", "tailgating: check the lane"),
                Kind.MANUAL: ("manual", "gate controller unavailable: operate the lane by hand"),
                Kind.FAULT: ("fault", "gate fault: check the gate controller"),
                Kind.PRESENTATION_ATTACK: ("presentation_attack",
                                           "possible presentation attack (a photo or a screen "
                                           "held up): check the traveller at lane {lane}")}
BOARD_COUNTS = {Kind.GRANTED: "granted", Kind.NOT_MATCHED: "staffed_lane",
                Kind.WRONG_FLIGHT: "wrong_flight", Kind.REFERRED: "refer",
                Kind.MATCHED_HELD: "refer", Kind.TAILGATING: "tailgating",
                Kind.PRESENTATION_ATTACK: "presentation_attack", Kind.PAD_STAFFED: "staffed_lane"}


def board_state(state: str) -> str:
    return BOARD_STATE.get(state, "idle")


def board_sink(board: LaneBoard) -> Sink:
    def sink(event: DecisionEvent) -> None:
        if event.kind in ALERT_KINDS and event.kind in BOARD_ALERTS:
            kind, message = BOARD_ALERTS[event.kind]
            board.publish_alert(event.lane, kind, message.format(lane=event.lane))
        if event.kind in BOARD_COUNTS:
            board.record_count(BOARD_COUNTS[event.kind], 1)
        elif event.kind is Kind.PASSAGE and event.reason == BOARDED:
            board.record_count("boarded", 1)
    return sink
