"""The kiosk page itself (static HTML/JS/CSS from the package) and a bare health check."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

router = APIRouter(tags=["pages"])


def static_dir() -> str:
    return str(resources.files("edge.kiosk") / "static")


class Health(BaseModel):
    status: str


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    html = (resources.files("edge.kiosk") / "static" / "index.html").read_text("utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/api/health", response_model=Health)
def health() -> Health:
    """Liveness only (no counts, no state): for the daemon's watchdog."""
    return Health(status="ok")
