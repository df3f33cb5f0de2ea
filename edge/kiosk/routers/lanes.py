"""Supervisor lane controls: override (open/close) and reset, through the gate controller.

Each action needs a reason, is audited with the supervisor's id, counted, and shown on the
board as an alert; the gate controller enforces its own safety rules and may refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import structlog
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from edge.kiosk.deps import BoardDep, GateDep, StoreDep, SupervisorDep
from edge.kiosk.errors import GateRefusedError, GateUnavailableError, NoGateError, UnknownLaneError
from edge.kiosk.store_ops import audit
from foundation.errors import ConsentGateError
from gate_controller.ports import GateCommands
from wire.gate import Ack

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/lanes", tags=["lanes"])

LanePath = Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["open", "close"]
    reason: str = Field(min_length=3, max_length=200, description="why, in a few words")


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=200, description="why, in a few words")


class LaneActionOut(BaseModel):
    lane: str
    action: str
    ok: bool
    state: str | None = None
    message: str


def _ack_fields(ack: Ack) -> tuple[bool, str | None, str | None]:
    """(ok, state, error) of the controller's answer."""
    return ack.ok, (ack.state.value if ack.state is not None else None), ack.error


def _run(gate: GateDep, board: BoardDep, lane: str, action: str,
         call: Callable[[GateCommands], Ack]) -> LaneActionOut:
    if lane not in board.lanes:
        raise UnknownLaneError(f"there is no lane {lane!r}: choose one of "
                               f"{', '.join(board.lanes)}")
    if gate is None:
        raise NoGateError("no gate controller is connected: operate the gate by hand and call "
                          "an engineer")
    try:
        ok, state, error = _ack_fields(call(gate))
    except ConsentGateError as exc:  # e.g. GateUnavailableError: no ack in time
        log.warning("kiosk_gate_unavailable", lane=lane, action=action)
        raise GateUnavailableError(f"the gate controller did not answer, so '{action}' may not "
                                   f"have happened ({exc})") from None
    if not ok:
        raise GateRefusedError(f"the gate controller refused '{action}'"
                               + (f": {error}" if error else "") + ". Check the lane.")
    return LaneActionOut(lane=lane, action=action, ok=True, state=state,
                         message=f"lane {lane}: {action} done")


@router.post("/{lane}/override", response_model=LaneActionOut)
def override(body: OverrideIn, session: SupervisorDep, gate: GateDep, board: BoardDep,
             store: StoreDep, lane: str = LanePath) -> LaneActionOut:
    """Open the lane for one supervised passage, or close it; needs a reason."""
    out = _run(gate, board, lane, body.action,
               lambda g: g.override(lane, body.action, body.reason, session.staff_id))
    audit(store, f"lane_override_{body.action}", session.staff_id, lane, body.reason)
    board.record_count("override")
    board.publish_alert(lane, "override", f"supervisor override: {body.action}")
    log.info("kiosk_lane_override", lane=lane, action=body.action)
    return out


@router.post("/{lane}/reset", response_model=LaneActionOut)
def reset(body: ResetIn, session: SupervisorDep, gate: GateDep, board: BoardDep,
          store: StoreDep, lane: str = LanePath) -> LaneActionOut:
    """Reset a lane (clear an alarm or a fault); needs a reason."""
    out = _run(gate, board, lane, "reset", lambda g: g.reset(lane, body.reason,
                                                             session.staff_id))
    audit(store, "lane_reset", session.staff_id, lane, body.reason)
    board.publish_alert(lane, "reset", "lane reset by supervisor")
    log.info("kiosk_lane_reset", lane=lane)
    return out
