"""The lane board: a snapshot, and a live server-sent event stream of lane states and alerts.

The stream starts with a full snapshot, so a reconnecting page is always consistent, and ends
after `stream_life_s` (the browser's EventSource reconnects by itself); that keeps server
shutdown quick and re-checks the session on every reconnect. When the daemon stops, the board
ends every stream at once (`LaneBoard.end_streams`), so no stream holds up the shutdown.

The board's health carries the matcher's operating point for engineers and supervisors only
(`ENGINEERING_ROLES`); it is stripped from snapshots and `health` events for agents. Staff
acknowledge an alert (`POST /api/board/alerts/{id}/ack`): audited `alert_acknowledged` with the
staff id as actor, the lane as subject and the alert kind as reason, never anyone's identity.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from edge.kiosk import auth
from edge.kiosk.board import BoardError
from edge.kiosk.deps import AgentDep, BoardDep, ContextDep, StoreDep, ViewerDep
from edge.kiosk.errors import NotFoundError
from edge.kiosk.store_ops import audit

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/board", tags=["board"])
KEEPALIVE_S = 10.0
ENGINEERING_ROLES = frozenset({"engineer", "supervisor"})  # see the matcher's operating point


def for_viewer(event: dict[str, Any], session: auth.StaffSession) -> dict[str, Any]:
    """`event` (a snapshot or a health event) without the operating point for agents."""
    health = event.get("health")
    if session.may(ENGINEERING_ROLES) or not isinstance(health, dict) \
            or "operating_point" not in health:
        return event
    return {**event, "health": {k: v for k, v in health.items() if k != "operating_point"}}


def sse(event: Mapping[str, object]) -> str:
    kind = event.get("type", "message")
    return f"id: {event.get('seq', 0)}\nevent: {kind}\ndata: {json.dumps(event)}\n\n"


@router.get("")
def snapshot(session: ViewerDep, board: BoardDep) -> dict[str, Any]:
    """Lane states, recent alerts (no identity), today's counts and the box's health."""
    return for_viewer(board.snapshot(), session)


@router.post("/alerts/{alert_id}/ack")
def acknowledge(session: AgentDep, board: BoardDep, store: StoreDep,
                alert_id: int = Path(ge=1, le=2**53)) -> dict[str, Any]:
    """Mark an alert seen (agents and supervisors); audited with the staff id and the kind."""
    try:
        alert = board.acknowledge(alert_id, session.staff_id)
    except BoardError as exc:
        raise NotFoundError(str(exc)) from None
    if alert.pop("new"):  # the first acknowledgement is audited, a repeat changes nothing
        audit(store, "alert_acknowledged", session.staff_id, f"lane {alert['lane']}",
              alert["kind"])
    log.info("kiosk_alert_acknowledged", lane=alert["lane"], kind=alert["kind"])
    return alert


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "server-sent events: snapshot, state, alert, counts"}})
async def events(request: Request, session: ViewerDep, board: BoardDep,
                 ctx: ContextDep) -> StreamingResponse:
    """Live board updates as server-sent events."""
    token = request.cookies.get(auth.SESSION_COOKIE)
    sub = board.subscribe()
    life = ctx.stream_life_s

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        end = loop.time() + life
        try:
            yield "retry: 1000\n\n"
            yield sse(for_viewer(board.snapshot_event(), session))
            while not sub.closed and (left := end - loop.time()) > 0:
                event = await sub.next(timeout=min(KEEPALIVE_S, left))
                if sub.closed:  # the server is stopping (LaneBoard.end_streams)
                    return
                if event is not None:
                    yield sse(for_viewer(event, session))
                    continue
                if await request.is_disconnected():
                    return
                if ctx.sessions.lookup(token)[0] is None:
                    yield sse({"type": "session_expired", "seq": 0})
                    return
                yield ": keep-alive\n\n"
        finally:
            sub.close()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
