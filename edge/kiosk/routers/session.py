"""Staff sessions: log in (throttled, locks out), log out, who am I."""

from __future__ import annotations

import math

import structlog
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.kiosk import auth
from edge.kiosk.deps import ContextDep, SessionDep, client_address
from edge.kiosk.errors import BadLoginError, KioskError, LockedOutError
from edge.kiosk.passwords import hash_password, verify_password
from edge.kiosk.store_ops import audit, find_staff

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/session", tags=["session"])

_DUMMY_HASH: list[str] = []  # verified against for unknown names, so timing does not tell


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password("not-a-real-password"))
    return _DUMMY_HASH[0]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionInfo(BaseModel):
    staff_id: str
    role: str
    csrf_token: str
    expires_in_s: int
    can_enrol: bool
    can_override: bool
    camera: bool
    lanes: list[str]


class UnsupportedMediaError(KioskError):
    status, code = 415, "unsupported_media_type"


def _info(session: auth.StaffSession, ctx: ContextDep) -> SessionInfo:
    now = ctx.services.clock.monotonic()
    return SessionInfo(staff_id=session.staff_id, role=session.role,
                       csrf_token=session.csrf_token,
                       expires_in_s=max(0, int(session.expires - now)),
                       can_enrol=session.may(auth.ENROL_ROLES),
                       can_override=session.may(auth.OVERRIDE_ROLES),
                       camera=ctx.services.camera is not None,
                       lanes=list(ctx.services.board.lanes))


@router.post("/login", response_model=SessionInfo,
             responses={401: {"description": "wrong name or password"},
                        429: {"description": "locked out after repeated failures"}})
def login(body: LoginRequest, request: Request, response: Response,
          ctx: ContextDep) -> SessionInfo:
    """Log a staff member in; sets the HttpOnly, SameSite=Strict session cookie."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise UnsupportedMediaError("send the login as JSON from the kiosk page")
    client = client_address(request)
    wait = ctx.throttle.retry_after(body.staff_id, client)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        log.warning("kiosk_login_locked")
        raise LockedOutError(f"too many failed log-ins: wait {minutes} minute(s) or ask a "
                             "supervisor", headers={"Retry-After": str(math.ceil(wait))})
    staff = find_staff(ctx.services.store, body.staff_id)
    encoded = staff.password_hash if staff is not None else _dummy_hash()
    good = verify_password(body.password, encoded)
    if staff is None or not good or staff.disabled or staff.role not in auth.ROLES:
        ctx.throttle.failure(body.staff_id, client)
        log.info("kiosk_login_failed")
        raise BadLoginError("wrong staff name or password: try again (accounts lock after "
                            f"{ctx.services.settings.kiosk.max_login_failures} failures)")
    ctx.throttle.success(body.staff_id)
    previous, _ = ctx.sessions.lookup(request.cookies.get(auth.SESSION_COOKIE))
    if previous is not None:  # a log-in always starts a fresh session (no fixation)
        ctx.sessions.end(previous)
    token, session = ctx.sessions.create(staff.name, staff.role)
    response.set_cookie(auth.SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=ctx.tls, path="/",
                        max_age=ctx.services.settings.kiosk.session_ttl_s)
    audit(ctx.services.store, "staff_login", staff.name)
    log.info("kiosk_login", role=staff.role)
    return _info(session, ctx)


@router.post("/logout", status_code=204)
def logout(session: SessionDep, response: Response, ctx: ContextDep) -> Response:
    """End this session (the cookie is cleared)."""
    ctx.sessions.end(session)
    audit(ctx.services.store, "staff_logout", session.staff_id)
    response.status_code = 204
    response.delete_cookie(auth.SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=ctx.tls)
    return response


@router.get("", response_model=SessionInfo)
def current(session: SessionDep, ctx: ContextDep) -> SessionInfo:
    """Who is logged in, their role, and the CSRF token the page must send on changes."""
    return _info(session, ctx)
