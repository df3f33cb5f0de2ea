"""The lane board: a snapshot, and a live server-sent event stream of lane states and alerts.

The stream starts with a full snapshot, so a reconnecting page is always consistent, and ends
after `stream_life_s` (the browser's EventSource reconnects by itself); that keeps server
shutdown quick and re-checks the session on every reconnect. When the daemon stops, the board
ends every stream at once (`LaneBoard.end_streams`), so no stream holds up the shutdown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from edge.kiosk import auth
from edge.kiosk.deps import BoardDep, ContextDep, ViewerDep

router = APIRouter(prefix="/api/board", tags=["board"])
KEEPALIVE_S = 10.0


def sse(event: Mapping[str, object]) -> str:
    kind = event.get("type", "message")
    return f"id: {event.get('seq', 0)}\nevent: {kind}\ndata: {json.dumps(event)}\n\n"


@router.get("")
def snapshot(_: ViewerDep, board: BoardDep) -> dict[str, Any]:
    """Lane states, recent alerts (no identity) and today's counts."""
    return board.snapshot()


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "server-sent events: snapshot, state, alert, counts"}})
async def events(request: Request, _: ViewerDep, board: BoardDep,
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
            yield sse(board.snapshot_event())
            while not sub.closed and (left := end - loop.time()) > 0:
                event = await sub.next(timeout=min(KEEPALIVE_S, left))
                if sub.closed:  # the server is stopping (LaneBoard.end_streams)
                    return
                if event is not None:
                    yield sse(event)
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
