"""The kiosk page itself (static HTML/JS/CSS from the package) and a bare health check."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from edge.kiosk.deps import ContextDep, ensure_device_cookie

router = APIRouter(tags=["pages"])


def static_dir() -> str:
    return str(resources.files("edge.kiosk") / "static")


class Health(BaseModel):
    status: str


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, ctx: ContextDep) -> HTMLResponse:
    """The page; a browser's first visit also gets its device cookie (edge.kiosk.devices)."""
    html = (resources.files("edge.kiosk") / "static" / "index.html").read_text("utf-8")
    response = HTMLResponse(html, headers={"Cache-Control": "no-store"})
    ensure_device_cookie(request, response, ctx)
    return response


@router.get("/api/health", response_model=Health)
def health() -> Health:
    """Liveness only (no counts, no state): for the daemon's watchdog."""
    return Health(status="ok")
