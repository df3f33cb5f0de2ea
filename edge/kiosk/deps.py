"""FastAPI dependencies of the kiosk as `Annotated` aliases (one place; tests override these).

`get_context` reads the one typed `KioskContext` that `create_app` attached; everything else is
derived from it. Role dependencies check the session, its expiry, the role, and for every
mutating method the CSRF header; `check_origin` (on every route, log-in included) refuses a
state-changing request whose `Origin` is not one of the kiosk's configured origins
(edge.kiosk.origins), never comparing it with the request's own `Host`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response

from edge.consent.boarding import Boarding
from edge.kiosk import auth
from edge.kiosk.board import LaneBoard
from edge.kiosk.devices import COOKIE_MAX_AGE_S, DEVICE_COOKIE, DeviceTable
from edge.kiosk.errors import (
    CsrfError,
    NotLoggedInError,
    ServiceUnavailableError,
    SessionExpiredError,
    WrongRoleError,
)
from edge.kiosk.origins import Origin, origin_allowed
from edge.kiosk.services import CameraLike, KioskServices, StoreLike
from edge.kiosk.store_ops import find_staff
from edge.vision.types import FaceEngineLike
from foundation.clock import Clock
from foundation.settings import KioskSettings
from gate_controller.ports import GateCommands

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class KioskContext:
    """Services plus the kiosk's own in-memory state (sessions, login throttle, screens)."""

    services: KioskServices
    sessions: auth.SessionTable
    throttle: auth.LoginThrottle
    devices: DeviceTable
    origins: frozenset[Origin] = frozenset()
    tls: bool = False
    stream_life_s: float = 30.0
    extras: dict[str, object] = field(default_factory=dict)


def get_context(request: Request) -> KioskContext:
    ctx = getattr(request.app.state, "kiosk", None)
    if not isinstance(ctx, KioskContext):
        raise ServiceUnavailableError("the kiosk is not wired to its services: restart the "
                                      "daemon (create_app was not used)")
    return ctx


ContextDep = Annotated[KioskContext, Depends(get_context)]


def get_services(ctx: ContextDep) -> KioskServices:
    return ctx.services


ServicesDep = Annotated[KioskServices, Depends(get_services)]


def get_store(services: ServicesDep) -> StoreLike:
    return services.store


def get_engine(services: ServicesDep) -> FaceEngineLike:
    return services.engine


def get_board(services: ServicesDep) -> LaneBoard:
    return services.board


def get_gate(services: ServicesDep) -> GateCommands | None:
    return services.gate


def get_camera(services: ServicesDep) -> CameraLike | None:
    return services.camera


def get_boarding(services: ServicesDep) -> Boarding:
    if services.boarding is None:  # create_app always sets one
        raise ServiceUnavailableError("the kiosk has no boarding selection: restart the daemon")
    return services.boarding


def get_clock(services: ServicesDep) -> Clock:
    return services.clock


def get_kiosk_settings(services: ServicesDep) -> KioskSettings:
    return services.settings.kiosk


StoreDep = Annotated[StoreLike, Depends(get_store)]
EngineDep = Annotated[FaceEngineLike, Depends(get_engine)]
BoardDep = Annotated[LaneBoard, Depends(get_board)]
GateDep = Annotated[GateCommands | None, Depends(get_gate)]
CameraDep = Annotated[CameraLike | None, Depends(get_camera)]
ClockDep = Annotated[Clock, Depends(get_clock)]
BoardingDep = Annotated[Boarding, Depends(get_boarding)]
KioskSettingsDep = Annotated[KioskSettings, Depends(get_kiosk_settings)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def client_key(request: Request, ctx: KioskContext) -> str:
    """Who the log-in throttle counts a request against: address plus the screen's device
    cookie (screens that share an address, such as the box's own at 127.0.0.1, differ)."""
    return ctx.devices.client_key(client_address(request), request.cookies.get(DEVICE_COOKIE))


def require_origin(request: Request, ctx: KioskContext) -> None:
    """403 for a state-changing request not from one of the kiosk's own origins."""
    if request.method in SAFE_METHODS:
        return
    if not origin_allowed(request.headers.get("origin"), request.headers.get("sec-fetch-site"),
                          ctx.origins):
        raise CsrfError("this request did not come from the kiosk page at this box's kiosk "
                        "address: open the kiosk at its configured address and try again")


def check_origin(request: Request, ctx: ContextDep) -> None:
    """The app-wide dependency of `require_origin` (every route, log-in included)."""
    require_origin(request, ctx)


def ensure_device_cookie(request: Request, response: Response, ctx: KioskContext) -> None:
    """Give a browser without a remembered device cookie a new one (within the bounds)."""
    if ctx.devices.lookup(request.cookies.get(DEVICE_COOKIE)) is not None:
        return
    token = ctx.devices.issue(client_address(request))
    if token is not None:
        response.set_cookie(DEVICE_COOKIE, token, httponly=True, samesite="strict",
                            secure=ctx.tls, path="/", max_age=COOKIE_MAX_AGE_S)


def get_session(request: Request, ctx: ContextDep) -> auth.StaffSession:
    """The caller's live staff session, or 401 (not logged in / expired)."""
    session, expired = ctx.sessions.lookup(request.cookies.get(auth.SESSION_COOKIE))
    if session is None:
        if expired:
            raise SessionExpiredError("your session has ended: log in again")
        raise NotLoggedInError("log in first")
    staff = find_staff(ctx.services.store, session.staff_id)
    if staff is None or staff.disabled or staff.role != session.role:
        ctx.sessions.end(session)  # disabled or changed accounts lose their sessions at once
        raise SessionExpiredError("your account was changed or disabled: log in again")
    if request.method not in SAFE_METHODS:
        require_origin(request, ctx)
        if not auth.csrf_ok(session, request.headers.get(auth.CSRF_HEADER)):
            raise CsrfError("the page is out of date: reload it and try again")
    return session


SessionDep = Annotated[auth.StaffSession, Depends(get_session)]


def require(roles: frozenset[str], what: str) -> Callable[[auth.StaffSession], auth.StaffSession]:
    """A dependency admitting only sessions whose role is in `roles`."""

    def check(session: SessionDep) -> auth.StaffSession:
        if not session.may(roles):
            raise WrongRoleError(f"your role ({session.role}) may not {what}: ask a "
                                 f"{' or '.join(sorted(roles))}")
        return session

    return check


ViewerDep = Annotated[auth.StaffSession, Depends(require(auth.VIEW_ROLES, "use the kiosk"))]
AgentDep = Annotated[auth.StaffSession,
                     Depends(require(auth.ENROL_ROLES, "enrol or withdraw travellers"))]
WithdrawDep = Annotated[auth.StaffSession,
                        Depends(require(auth.WITHDRAW_ROLES, "withdraw consent"))]
SupervisorDep = Annotated[auth.StaffSession,
                          Depends(require(auth.OVERRIDE_ROLES, "override or reset a lane"))]
BoardingSetDep = Annotated[auth.StaffSession,
                           Depends(require(auth.OVERRIDE_ROLES, "set the flight boarding"))]
