"""The fleet dashboard: staff log-in, charts per airport, gate and hour, tables, Prometheus.

`create_app(db, ...)` is a FastAPI app (served by `python -m central dashboard`) over either
central database (central.db_access; PostgreSQL's roll-ups or the SQLite file's windows):

- `GET /login`, `POST /login` (form: name, password), `POST /logout`: sessions of
  central.auth, users of central.users (`python -m central add-user`); failed log-ins back off
  (429 with Retry-After), never lock out;
- `GET /` the page (central.dashboard_page): charts drawn in the browser with uPlot from
  `/api/series`, the day's table per airport and gate, the devices;
- `GET /api/places`, `/api/series?hours=&airport=&gate=`, `/api/fleet?day=`, `/api/devices`;
  `POST /api/refresh` (admin, PostgreSQL: refresh the roll-ups);
- `GET /metrics`: central.metrics, for a scrape token (`Authorization: Bearer`) or a session;
- `GET /assets/uplot.js|css` (from the assets folder), `/static/dashboard.js|css`.

Every data route needs a session (401, or a redirect to /login for the page). Every POST must
carry this dashboard's own Origin (403 otherwise). Every answer carries a
Content-Security-Policy of `default-src 'self'`: the page loads nothing from elsewhere.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from central import fleet_data, metrics
from central.auth import Backoff, Session, Sessions, origin_allowed
from central.dashboard_assets import SCRIPT, STYLE
from central.dashboard_page import fleet_page, login_page
from central.db_access import central
from central.users import authenticate
from foundation.clock import Clock, SystemClock

log = structlog.get_logger(__name__)
CSP = ("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'")
MAX_FORM_BYTES = 4096
_PLACE = r"^[A-Za-z0-9._-]{1,32}$"
_DAY = r"^\d{4}-\d{2}-\d{2}$"


class _LoggedOut(Exception):
    """No (or an expired) session."""


def _security_headers(response: Response, *, cache: bool = False) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # not no-referrer: under it a browser sends `Origin: null` on the page's own form POSTs
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "private, max-age=3600" if cache else "no-store"


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=8, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in fields.items() if v}


def create_app(db: str, *, uplot: dict[str, bytes], origins: frozenset[str],
               secure_cookie: bool = False, scrape_token: str | None = None,
               silent_after_s: float = 7200.0, session_ttl_s: float = 8 * 3600.0,
               clock: Clock | None = None, backoff: Backoff | None = None) -> FastAPI:
    """See the module docstring; `origins` are normalised (central.auth.normal_origin)."""
    clock = clock or SystemClock()
    sessions = Sessions(clock, session_ttl_s)
    throttle = backoff or Backoff(clock)
    cookie = "__Host-cg_fleet" if secure_cookie else "cg_fleet"
    app = FastAPI(title="consentgate fleet dashboard", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.sessions = sessions

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                    ) -> Response:
        if request.method not in ("GET", "HEAD") and not origin_allowed(
                request.headers.get("origin"), origins):
            log.warning("central_dashboard_origin_refused", path=request.url.path[:80])
            response: Response = PlainTextResponse(
                "refused: this request must come from the dashboard's own page", 403)
        else:
            response = await call_next(request)
        _security_headers(response, cache=request.url.path.startswith(("/assets/", "/static/")))
        return response

    @app.exception_handler(_LoggedOut)
    async def logged_out(request: Request, exc: _LoggedOut) -> Response:
        if request.url.path.startswith(("/api/", "/metrics")):
            return JSONResponse({"detail": "log in first (POST /login)"}, 401)
        return RedirectResponse("/login", 303)

    def session(request: Request) -> Session:
        found = sessions.lookup(request.cookies.get(cookie))
        if found is None:
            raise _LoggedOut
        return found

    def set_cookie(response: Response, token: str) -> None:
        response.set_cookie(cookie, token, max_age=int(session_ttl_s), path="/", httponly=True,
                            samesite="strict", secure=secure_cookie)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        if sessions.lookup(request.cookies.get(cookie)) is not None:
            return RedirectResponse("/", 303)
        return HTMLResponse(login_page())

    @app.post("/login")
    async def login(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return HTMLResponse(login_page("The form is too large."), 413)
        form = _parse_form(body)
        name, password = form.get("name", "")[:64], form.get("password", "")[:1024]
        client = request.client.host if request.client else "-"
        wait = throttle.retry_after(name, client)
        if wait > 0:
            log.warning("central_login_throttled", client=client, retry_after_s=round(wait, 1))
            return HTMLResponse(login_page(f"Too many failed log-ins: try again in "
                                           f"{int(wait) + 1} s.", name), 429,
                                headers={"Retry-After": str(int(wait) + 1)})

        def check() -> Any:
            with central(db) as handle:
                return authenticate(handle, name, password)

        user = await run_in_threadpool(check)
        if user is None:
            throttle.failure(name, client)
            log.warning("central_login_failed", client=client)
            return HTMLResponse(login_page("Wrong name or password.", name), 401)
        throttle.success(name, client)
        log.info("central_login_ok", user=user.name, role=user.role)
        response = RedirectResponse("/", 303)
        set_cookie(response, sessions.create(user.name, user.role))
        return response

    @app.post("/logout")
    def logout(request: Request) -> Response:
        sessions.end(request.cookies.get(cookie))
        response = RedirectResponse("/login", 303)
        response.delete_cookie(cookie, path="/", httponly=True, samesite="strict",
                               secure=secure_cookie)
        return response

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, day: str | None = Query(None, pattern=_DAY)) -> str:
        who = session(request)
        with central(db) as handle:
            return fleet_page(who.name, who.role, _fleet(handle, day),
                              fleet_data.devices(handle, silent_after_s))

    @app.get("/api/places")
    def api_places(request: Request) -> dict[str, Any]:
        session(request)
        with central(db) as handle:
            return fleet_data.places(handle)

    @app.get("/api/series")
    def api_series(request: Request,
                   hours: int = Query(48, ge=1, le=fleet_data.MAX_HOURS),
                   airport: str | None = Query(None, pattern=_PLACE),
                   gate: str | None = Query(None, pattern=_PLACE)) -> dict[str, Any]:
        session(request)
        with central(db) as handle:
            return fleet_data.series(handle, hours, airport, gate)

    @app.get("/api/fleet")
    def api_fleet(request: Request, day: str | None = Query(None, pattern=_DAY)
                  ) -> dict[str, Any]:
        session(request)
        with central(db) as handle:
            return _fleet(handle, day)

    @app.get("/api/devices")
    def api_devices(request: Request) -> dict[str, Any]:
        session(request)
        with central(db) as handle:
            return fleet_data.devices(handle, silent_after_s)

    @app.post("/api/refresh")
    def api_refresh(request: Request) -> dict[str, Any]:
        who = session(request)
        if who.role != "admin":
            raise HTTPException(403, "only an admin may refresh the roll-ups")
        from central.rollups import refresh

        with central(db) as handle:
            if handle.backend != "postgres":
                raise HTTPException(409, "a SQLite database has no roll-ups to refresh")
            done = refresh(handle.conn)
        log.info("central_rollup_refreshed", device_hours=done.device_hours, user=who.name)
        return {"device_hours": done.device_hours, "device_days": done.device_days}

    @app.get("/metrics")
    def prometheus(request: Request) -> Response:
        given = request.headers.get("authorization", "")
        if not (scrape_token and given.startswith("Bearer ") and hmac.compare_digest(
                given[7:].strip().encode(), scrape_token.encode())):
            session(request)
        with central(db) as handle:
            text = metrics.exposition(fleet_data.gate_totals(handle),
                                      fleet_data.devices(handle, silent_after_s)["devices"])
        return Response(text, media_type=metrics.CONTENT_TYPE)

    @app.get("/assets/{name}")
    def asset(name: str) -> Response:
        if name not in uplot:
            raise HTTPException(404, "no such asset")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return Response(uplot[name], media_type=kind)

    @app.get("/static/dashboard.js")
    def script() -> Response:
        return Response(SCRIPT, media_type="text/javascript")

    @app.get("/static/dashboard.css")
    def style() -> Response:
        return Response(STYLE, media_type="text/css")

    return app


def _fleet(handle: Any, day: str | None) -> dict[str, Any]:
    try:
        return fleet_data.fleet(handle, day)
    except ValueError:
        raise HTTPException(422, "day: give a real date, YYYY-MM-DD") from None
