"""Staff sessions: log in (slowed down after failures, never locked), log out, who am I, and a
supervisor's unlock of a name's failed log-ins."""

from __future__ import annotations

import math
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.kiosk import auth
from edge.kiosk.deps import ContextDep, SessionDep, client_key, ensure_device_cookie, require
from edge.kiosk.devices import DEVICE_COOKIE
from edge.kiosk.errors import BadLoginError, KioskError, LockedOutError, NotFoundError
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


class UnlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Field(min_length=1, max_length=64)


class UnlockResult(BaseModel):
    staff_id: str
    failures_cleared: int
    message: str


UnlockDep = Annotated[auth.StaffSession,
                      Depends(require(auth.UNLOCK_ROLES, "unlock a staff member's log-in"))]


def _wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second(s)"
    return f"{math.ceil(seconds / 60)} minute(s)"


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
                        403: {"description": "not sent from the kiosk's own origin"},
                        429: {"description": "too soon after failed log-ins: wait Retry-After "
                                              "seconds"}})
def login(body: LoginRequest, request: Request, response: Response,
          ctx: ContextDep) -> SessionInfo:
    """Log a staff member in; sets the HttpOnly, SameSite=Strict session cookie.

    After failed log-ins of a name from this screen the next try waits (429 with Retry-After,
    the password unchecked); the right password after the wait succeeds. The request must come
    from the kiosk's own origin (checked app-wide, see edge.kiosk.origins).
    """
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise UnsupportedMediaError("send the login as JSON from the kiosk page")
    client = client_key(request, ctx)
    wait = ctx.throttle.retry_after(body.staff_id, client)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        log.warning("kiosk_login_delayed", wait_s=seconds)
        raise LockedOutError(f"too many failed log-ins: wait {_wait_words(seconds)} and try "
                             "again, or ask a supervisor to unlock the name",
                             headers={"Retry-After": str(seconds)})
    staff = find_staff(ctx.services.store, body.staff_id)
    encoded = staff.password_hash if staff is not None else _dummy_hash()
    good = verify_password(body.password, encoded)
    if staff is None or not good or staff.disabled or staff.role not in auth.ROLES:
        ctx.throttle.failure(body.staff_id, client)
        log.info("kiosk_login_failed")
        raise BadLoginError("wrong staff name or password: try again (after "
                            f"{ctx.services.settings.kiosk.max_login_failures} failures each "
                            "try waits longer)")
    ctx.throttle.success(body.staff_id, client)
    ctx.devices.trust(request.cookies.get(DEVICE_COOKIE))
    ensure_device_cookie(request, response, ctx)
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


@router.post("/unlock", response_model=UnlockResult,
             responses={404: {"description": "no such staff account"}})
def unlock(body: UnlockRequest, session: UnlockDep, ctx: ContextDep) -> UnlockResult:
    """A supervisor clears a staff name's failed log-ins (every screen's): its next log-in is
    checked at once. Audited `staff_unlocked` with the supervisor as actor."""
    staff = find_staff(ctx.services.store, body.staff_id)
    if staff is None:
        raise NotFoundError("there is no staff account of that name: check the spelling")
    failures = ctx.throttle.failures(staff.name)
    ctx.throttle.unlock(staff.name)
    audit(ctx.services.store, "staff_unlocked", session.staff_id, staff.name,
          f"failures={failures}")
    log.info("kiosk_login_unlocked", failures=failures)
    return UnlockResult(staff_id=staff.name, failures_cleared=failures,
                        message=f"{staff.name} may log in again at once")
