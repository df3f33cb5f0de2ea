"""Operations endpoints served beside the kiosk: `/healthz` and Prometheus `/metrics`, and the
health body and capture gauges they report.

`/healthz` answers 200 when capture delivers fresh frames, the inference loop is alive and
the gate controller answers, 503 otherwise, with a small JSON body of states (no identities).
`/metrics` is the text exposition format with the `consentgate_` prefix. Its decision counters
are raw, real-time and unsuppressed, so it answers loopback clients only (a scraper or agent on
the box); anything else gets 403 and must go through that local agent. Only the k-suppressed
windows of `edge.telemetry` ever leave the box.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from edge.capture.reader import LatestFrameReader
from edge.operations.metrics import DaemonMetrics, Labels

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def ops_router(metrics: DaemonMetrics, health: Callable[[], dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        body = health()
        return JSONResponse(body, status_code=200 if body.get("status") == "ok" else 503)

    @router.get("/metrics", include_in_schema=False, response_model=None)
    def prometheus(request: Request) -> PlainTextResponse | JSONResponse:
        if not is_loopback(request.client.host if request.client else None):
            return JSONResponse({"error": "metrics_local_only",
                                 "message": "metrics are served to this box only: scrape them "
                                            "from a local agent on 127.0.0.1"}, status_code=403)
        return PlainTextResponse(metrics.registry.render(), media_type=PROMETHEUS_TYPE)

    return router


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8 and ::1 (IPv4-mapped too); False for anything else or unknown."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


def mount_ops(app: FastAPI, router: APIRouter) -> FastAPI:
    """Add the ops routes ahead of the app's own (so no catch-all page can shadow them)."""
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added
    return app


def health_report(reader: LatestFrameReader | None, loop_ok: bool, gate_ok: bool,
                  lanes: dict[str, str]) -> dict[str, Any]:
    """The `/healthz` body: `ok` when capture delivers fresh frames (`reader`, the visible
    camera's LatestFrameReader or None), the loop is alive and the gate controller answers."""
    stats = reader.stats() if reader else None
    capture_ok = reader is not None and reader.healthy()
    status = "ok" if capture_ok and loop_ok and gate_ok else "degraded"
    return {"status": status, "capture": {
                "connected": bool(stats and stats.connected),
                "frame_age_s": None if not stats or stats.frame_age_s is None
                else round(stats.frame_age_s, 3),
                "frames": stats.frames if stats else 0,
                "corrupt": stats.corrupt if stats else 0,
                "reconnects": stats.reconnects if stats else 0},
            "inference_loop": "ok" if loop_ok else "stalled",
            "gate_controller": "up" if gate_ok else "down", "lanes": lanes}


def reader_gauges(readers: Sequence[tuple[str, LatestFrameReader]]) -> dict[Labels, float]:
    """The `consentgate_capture` gauge's samples: each camera reader's counters and state."""
    out: dict[Labels, float] = {}
    for name, reader in readers:
        s = reader.stats()
        out[(("camera", name), ("what", "frames"))] = s.frames
        out[(("camera", name), ("what", "corrupt"))] = s.corrupt
        out[(("camera", name), ("what", "reconnects"))] = s.reconnects
        out[(("camera", name), ("what", "connected"))] = int(s.connected)
    return out
