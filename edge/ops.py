"""Operations endpoints served beside the kiosk: `/healthz` and Prometheus `/metrics`.

`/healthz` answers 200 when capture delivers fresh frames, the inference loop is alive and
the gate controller answers, 503 otherwise, with a small JSON body of states (no identities).
`/metrics` is the text exposition format with the `consentgate_` prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from edge.metrics import DaemonMetrics

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def ops_router(metrics: DaemonMetrics, health: Callable[[], dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        body = health()
        return JSONResponse(body, status_code=200 if body.get("status") == "ok" else 503)

    @router.get("/metrics", include_in_schema=False)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.registry.render(), media_type=PROMETHEUS_TYPE)

    return router


def mount_ops(app: FastAPI, router: APIRouter) -> FastAPI:
    """Add the ops routes ahead of the app's own (so no catch-all page can shadow them)."""
    before = len(app.router.routes)
    app.include_router(router)
    added = app.router.routes[before:]
    del app.router.routes[before:]
    app.router.routes[0:0] = added
    return app
