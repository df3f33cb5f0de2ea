"""Operations endpoints served beside the kiosk: `/healthz` and Prometheus `/metrics`, and the
health body and capture gauges they report.

`/healthz` answers 200 when capture delivers fresh frames, the inference loop is alive and
the gate controller answers, 503 otherwise, with a small JSON body of states (no identities):
each camera (`ok`, `stale` or `down`), the gate link (`up`/`down`, why and since when), thermal
screening (`on`, `off` or `uncalibrated`, and why). `HealthFeed` hands the same report (plus the
matcher's operating point, for engineers) to the lane board about once a second, so the board
shows what `/healthz` knows.
`/metrics` is the text exposition format with the `consentgate_` prefix. Its decision counters
are raw, real-time and unsuppressed, so it answers loopback clients only (a scraper or agent on
the box); anything else gets 403 and must go through that local agent. Only the k-suppressed
windows of `edge.telemetry` ever leave the box.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from edge.capture.reader import LatestFrameReader
from edge.operations.metrics import DaemonMetrics, Labels

log = structlog.get_logger(__name__)

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


def camera_state(reader: LatestFrameReader) -> dict[str, Any]:
    """One camera: `ok` (fresh frames), `stale` (connected, frames too old) or `down`."""
    stats = reader.stats()
    state = "ok" if reader.healthy() else "stale" if stats.connected else "down"
    return {"state": state, "connected": bool(stats.connected),
            "frame_age_s": None if stats.frame_age_s is None else round(stats.frame_age_s, 3),
            "frames": stats.frames, "reconnects": stats.reconnects}


def daemon_health(d: Any) -> dict[str, Any]:
    """The /healthz body of an edge.daemon.Daemon (read duck-typed: its readers, loop beat,
    gate link, thermal status and pipeline). Thermal is `uncalibrated` while the frames are not
    of the calibrated size (every reading unreliable)."""
    p = d.pipeline
    lanes = {name: lane.machine.state.value for name, lane in p.lanes.items()} if p else {}
    thermal = dict(getattr(d, "thermal_status", None) or {"state": "on"})
    problem = getattr(p, "_geometry_problem", None) if p is not None else None
    if thermal.get("state") == "on" and problem:
        thermal = {"state": "uncalibrated", "reason": str(problem)[:200]}
    link = d.gate_link
    return health_report(d.reader, d.clock.monotonic() - d._loop_beat < 5.0,
                         link is not None and link.up, lanes, cameras=d._readers(),
                         gate=link.state() if link is not None else
                         {"reason": "the gate link has not started", "since": None},
                         thermal=thermal)


def health_report(reader: LatestFrameReader | None, loop_ok: bool, gate_ok: bool,
                  lanes: dict[str, str], *,
                  cameras: Sequence[tuple[str, LatestFrameReader]] = (),
                  gate: dict[str, Any] | None = None,
                  thermal: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `/healthz` body: `ok` when capture delivers fresh frames (`reader`, the visible
    camera's LatestFrameReader or None), every other camera in `cameras` too, the loop is alive
    and the gate controller answers (`gate`: the link's state, edge.decisions.gatelink)."""
    stats = reader.stats() if reader else None
    capture_ok = reader is not None and reader.healthy()
    per_camera = {name: camera_state(r) for name, r in cameras}
    # the lane's cameras; the kiosk's enrolment camera is reported but never fails the gate
    cameras_ok = all(c["state"] == "ok" for n, c in per_camera.items() if n != "kiosk")
    status = "ok" if capture_ok and cameras_ok and loop_ok and gate_ok else "degraded"
    body: dict[str, Any] = {"status": status, "capture": {
                "connected": bool(stats and stats.connected),
                "frame_age_s": None if not stats or stats.frame_age_s is None
                else round(stats.frame_age_s, 3),
                "frames": stats.frames if stats else 0,
                "corrupt": stats.corrupt if stats else 0,
                "reconnects": stats.reconnects if stats else 0},
            "inference_loop": "ok" if loop_ok else "stalled",
            "gate_controller": "up" if gate_ok else "down", "lanes": lanes}
    if cameras:
        body["cameras"] = per_camera
    if gate is not None:
        body["gate"] = {"state": "up" if gate_ok else "down",
                        "reason": None if gate_ok else gate.get("reason"),
                        "since": gate.get("since")}
    if thermal is not None:
        body["thermal"] = thermal
    return body


class HealthFeed:
    """Calls `publish()` (the board's health, edge.kiosk.board_feed.board_health_feed) every
    `every_s` seconds of the loop (`poll(now)`, monotonic); a failure is logged, never raised
    into the inference loop."""

    def __init__(self, publish: Callable[[], None], every_s: float = 1.0) -> None:
        self._publish, self._every = publish, every_s
        self._next: float | None = None

    def poll(self, now: float) -> None:
        if self._next is not None and now < self._next:
            return
        self._next = now + self._every
        try:
            self._publish()
        except Exception as exc:
            log.warning("health_publish_failed", error=str(exc)[:200])


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
