"""What the kiosk's lane board shows of the daemon's decisions: states, alerts and counts.

`board_sink(board)` is an event-bus sink: alerts for the alert kinds, one count per decision
(`granted` when a face grant opens the gate, `boarded` only when the passage sensor confirms
that grant was used: a grant nobody walks through is not a boarding). `board_state` maps a lane
machine state to the board's. `board_health` turns the /healthz report
(edge.operations.health) into the board's health: `live` only while the cameras deliver, the
loop runs and the gate link is up, and each problem in staff's words (what is wrong, since
when, what to do); the matcher's operating point rides along for engineers and supervisors
(the kiosk strips it for agents).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from edge.decisions.events import ALERT_KINDS, BOARDED, DecisionEvent, Kind, Sink
from edge.kiosk.board import LaneBoard

# lane machine state -> kiosk board state
BOARD_STATE = {"idle": "idle", "presenting": "presenting", "granted": "granted",
               "not_matched": "staffed_lane", "wrong_flight": "wrong_flight", "refer": "refer",
               "manual": "manual", "emergency": "emergency"}
BOARD_ALERTS = {Kind.REFERRED: ("refer", "refer for secondary screening (thermal)"),
                Kind.MATCHED_HELD: ("refer", "refer for secondary screening before boarding"),
                Kind.TAILGATING: ("tailgating", "tailgating: check the lane"),
                Kind.MANUAL: ("manual", "gate controller unavailable{why}: operate the lane by "
                                        "hand"),
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
            why = f" ({event.reason[:120]})" if event.reason else ""
            board.publish_alert(event.lane, kind, message.format(lane=event.lane, why=why))
        if event.kind in BOARD_COUNTS:
            board.record_count(BOARD_COUNTS[event.kind], 1)
        elif event.kind is Kind.PASSAGE and event.reason == BOARDED:
            board.record_count("boarded", 1)
    return sink


def _hhmm(since: Any) -> str:
    try:
        return dt.datetime.fromtimestamp(float(since)).strftime("%H:%M")
    except (TypeError, ValueError, OverflowError, OSError):
        return "the start"


def board_health(report: dict[str, Any],
                 operating_point: dict[str, Any] | None = None) -> dict[str, Any]:
    """The board's health from a /healthz body: {"live", "problems": [{"what", "state",
    "message"}], "cameras", "gate", "thermal", "operating_point"} (no identity)."""
    problems: list[dict[str, str]] = []
    cameras = report.get("cameras") or {}
    for name, cam in cameras.items():
        if cam.get("state") == "down":
            problems.append({"what": f"camera_{name}", "state": "down", "message":
                             f"{name} camera down (no frames, reconnecting): check its cable "
                             "and power; travellers go to the staffed lane"})
        elif cam.get("state") == "stale":
            problems.append({"what": f"camera_{name}", "state": "stale", "message":
                             f"{name} camera frames are stale (connected, nothing new): "
                             "check the camera"})
    gate = report.get("gate") or {}
    if report.get("gate_controller") != "up":
        why = gate.get("reason") or "not answering"
        problems.append({"what": "gate", "state": "down", "message":
                         f"gate controller unreachable since {_hhmm(gate.get('since'))} "
                         f"({str(why)[:100]}): operate the lane by hand"})
    if report.get("inference_loop") == "stalled":
        problems.append({"what": "loop", "state": "stalled", "message":
                         "face matching has stalled: operate the lane by hand and call an "
                         "engineer"})
    thermal = report.get("thermal") or {}
    if thermal.get("state") in ("off", "uncalibrated"):
        word = "off" if thermal["state"] == "off" else "uncalibrated"
        problems.append({"what": "thermal", "state": thermal["state"], "message":
                         f"thermal screening {word}: {str(thermal.get('reason'))[:150]}"})
    # the live badge: the lane's cameras deliver and the gate link is up (thermal off and the
    # kiosk's enrolment camera are warnings only)
    live = not any(p["what"] not in ("thermal", "camera_kiosk") for p in problems)
    out: dict[str, Any] = {"live": live, "problems": problems,
                           "cameras": {n: c.get("state") for n, c in cameras.items()},
                           "gate": "up" if report.get("gate_controller") == "up" else "down",
                           "thermal": thermal.get("state")}
    if operating_point is not None:
        out["operating_point"] = operating_point
    return out


def operating_point_view(point: Any) -> dict[str, Any]:
    """The matcher's operating point for engineers: threshold, gallery size, FPIR target and
    whether the gallery size is inside the calibrated range (a warning when it is not)."""
    view = {"threshold": round(float(point.threshold), 4), "gallery_size": int(point.gallery_size),
            "target_fpir": float(point.target_fpir), "in_range": bool(point.in_range),
            "method": str(getattr(point, "method", ""))[:32]}
    if not point.in_range:
        note = str(getattr(point, "note", "") or "")[:120]
        view["warning"] = (f"gallery of {view['gallery_size']} templates is outside the "
                           "calibrated range, so FPIR may differ from the target"
                           + (f" ({note})" if note else ""))
    return view


def board_health_feed(board: LaneBoard, health: Callable[[], dict[str, Any]],
                      gallery: Any = None) -> Callable[[], None]:
    """What the daemon calls about once a second: the /healthz report and the gallery's
    operating point (edge.consent.gallery; None on a fixed threshold) onto the board."""
    def publish() -> None:
        point = gallery.operating_point() if gallery is not None else None
        board.publish_health(board_health(health(), operating_point_view(point)
                                          if point is not None else None))
    return publish
