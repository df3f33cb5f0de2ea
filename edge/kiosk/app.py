"""The kiosk's composition root: `create_app(services)` builds the FastAPI app.

Wires the routers (one per resource), the typed context the dependencies read, the body-size
limit, static files, error handlers that answer `{"error", "message"}` without echoing input,
and a lifespan. The daemon serves the result with uvicorn (TLS when configured).
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from edge.consent.boarding import Boarding
from edge.kiosk import auth
from edge.kiosk.deps import KioskContext, check_origin
from edge.kiosk.devices import DeviceTable
from edge.kiosk.errors import KioskError
from edge.kiosk.limits import BodyLimitMiddleware
from edge.kiosk.origins import kiosk_origins
from edge.kiosk.photo import MAX_PHOTOS, b64_limit, limit_words
from edge.kiosk.receipt import warm_up
from edge.kiosk.routers import (
    board,
    boarding,
    consents,
    enrolments,
    lanes,
    pages,
    session,
    staff_admin,
    tokens,
    withdrawals,
)
from edge.kiosk.services import KioskServices

log = structlog.get_logger(__name__)

UPLOAD_PATHS = ("/api/enrolments", "/api/enrolments/check")


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


async def _kiosk_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KioskError)
    return _error(exc.status, exc.code, str(exc), exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "upload_too_large"}
    message = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404:
        message = "no such page or API route"
    return _error(exc.status_code, codes.get(exc.status_code, "http_error"), message,
                  dict(exc.headers or {}))


_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}|[0-9]{1,9}")


def _field_name(part: object) -> str:
    """A location part as sent back: a schema field name or an index, else a placeholder."""
    text = str(part)
    return text if _FIELD.fullmatch(text) else "(field)"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """422 naming the fields and the problem, never the submitted values (passwords, photos)."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for item in exc.errors()[:10]:
        if item.get("type") == "extra_forbidden":  # the name itself was sent: never echo it
            problems.append({"field": "(unexpected field)",
                             "problem": "this field is not part of the request: remove it"})
            continue
        where = ".".join(_field_name(p) for p in item.get("loc", ()) if p != "body")
        problems.append({"field": where or "request",
                         "problem": str(item.get("msg", "invalid"))[:200]})
    fields = ", ".join(p["field"] for p in problems)
    return JSONResponse({"error": "invalid_request",
                         "message": f"check these fields and send again: {fields}",
                         "problems": problems}, status_code=422)


def create_app(services: KioskServices, *, stream_life_s: float = 30.0) -> FastAPI:
    """The kiosk web app over `services` (sessions, log-in back-off and screens live in this
    app instance)."""
    k = services.settings.kiosk
    ctx = KioskContext(
        services=services,
        sessions=auth.SessionTable(services.clock, k.session_ttl_s),
        throttle=auth.LoginThrottle(
            services.clock, free_failures=k.max_login_failures, forget_s=k.lockout_s,
            base_s=k.login_backoff_s, max_s=k.login_backoff_max_s,
            name_slow_after=k.login_name_slow_after, name_max_s=k.login_name_delay_max_s),
        devices=DeviceTable(services.clock, max_devices=k.max_screens,
                            per_address=k.new_screens_per_address),
        origins=kiosk_origins(k),
        tls=bool(k.tls_cert_file and k.tls_key_file),
        stream_life_s=stream_life_s)
    if services.boarding is None:  # no daemon gallery to filter: the kiosk's own selection
        services.boarding = Boarding(services.clock)
    services.boarding.add_listener(services.board.publish_boarding)
    services.board.publish_boarding(services.boarding.summary())

    if services.settings.matching.mode != "gallery":  # token receipts: the PDF writer, now
        threading.Thread(target=warm_up, name="receipt-warm-up", daemon=True).start()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("kiosk_started", lanes=len(services.board.lanes), tls=ctx.tls,
                 camera=services.camera is not None, gate=services.gate is not None)
        yield
        log.info("kiosk_stopped", sessions=len(ctx.sessions))

    app = FastAPI(title="consentgate staff kiosk", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(check_origin)])  # every state change, log-in too
    app.state.kiosk = ctx
    for module in (session, enrolments, withdrawals, consents, board, boarding, lanes, tokens,
                   staff_admin, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.static_dir()), name="static")
    app.add_exception_handler(KioskError, _kiosk_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodyLimitMiddleware, upload_paths=UPLOAD_PATHS,
                       upload_limit=MAX_PHOTOS * b64_limit(k.max_upload_bytes) + 4096,
                       upload_message=f"the photos sent are too large: at most {MAX_PHOTOS} "
                                      f"photos of {limit_words(k.max_upload_bytes)} each")
    return app
