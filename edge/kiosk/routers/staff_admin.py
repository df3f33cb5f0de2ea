"""Staff administration while the daemon runs: a supervisor lists, adds, disables, enables and
unlocks staff and resets passwords from the kiosk's staff screen.

`StaffAdmin` does the work over the store's `staff` table, the kiosk's sessions and its log-in
back-off (edge.kiosk.auth), so the kiosk routes here and the daemon's admin socket
(edge.kiosk.admin_socket, used by `python -m provisioning add-staff` while the daemon
holds the store) change accounts the same way. Every change is audited (`staff_added`,
`staff_disabled`, `staff_enabled`, `staff_unlocked`, `staff_password_reset`, `staff_upserted`)
with the actor and the account name; no password or hash is ever logged, audited or returned.
New passwords follow the policy of edge.consent.staff (12+ characters, no white space at
either end). Disabling an account or resetting its password ends its sessions at once.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from edge.consent.errors import ConsentStoreError, InvalidStaffError
from edge.consent.staff import StaffExistsError, check_name, check_password
from edge.kiosk import auth
from edge.kiosk.deps import ContextDep, KioskContext, require
from edge.kiosk.errors import KioskError, NotFoundError, ServiceUnavailableError
from edge.kiosk.passwords import PasswordPolicyError, hash_password, needs_rehash
from edge.kiosk.services import StoreLike

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/staff", tags=["staff"])

MAX_LISTED = 500


class StaffConflictError(KioskError):
    status, code = 409, "staff_conflict"


class StaffInvalidError(KioskError):
    status, code = 422, "staff_invalid"


def hash_ok(encoded: str) -> bool:
    """A password hash of the kiosk's scheme at today's strength (what the admin socket
    accepts from provisioning, which hashes before sending)."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    return (len(parts) == 6 and len(encoded) <= 512 and not needs_rehash(encoded)
            and all(parts[4:]))


class StaffAdmin:
    """Account changes over the store, the sessions and the back-off (the latter two are
    None where the kiosk is off: then there is nothing to unlock or end)."""

    def __init__(self, store: StoreLike, sessions: auth.SessionTable | None = None,
                 throttle: auth.LoginThrottle | None = None) -> None:
        self._store = store
        self._sessions = sessions
        self._throttle = throttle

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except StaffExistsError as exc:
            raise StaffConflictError(str(exc)) from None
        except InvalidStaffError as exc:
            raise StaffInvalidError(str(exc)) from None
        except ConsentStoreError as exc:
            log.error("staff_admin_store_error", error=type(exc).__name__)
            raise ServiceUnavailableError(f"the consent store is unavailable ({exc}); call "
                                          "an engineer") from None

    def existing(self, name: str) -> str:
        staff = self._call(self._store.staff.get, name)
        if staff is None:
            raise NotFoundError("there is no staff account of that name: check the spelling")
        return str(staff.name)

    def _end_sessions(self, name: str) -> None:
        if self._sessions is not None:
            self._sessions.end_all_for(name)

    def accounts(self) -> list[dict[str, Any]]:
        """Every account: name, role, disabled, and its log-in back-off (never the hash)."""
        out = []
        for staff in self._call(self._store.staff.all)[:MAX_LISTED]:
            failures = self._throttle.failures(staff.name) if self._throttle else 0
            wait = self._throttle.waiting_s(staff.name) if self._throttle else 0.0
            out.append({"staff_id": staff.name, "role": staff.role, "disabled": staff.disabled,
                        "locked_out": wait > 0, "failures": failures,
                        "wait_s": int(wait + 0.999)})
        return out

    @staticmethod
    def _role(role: str) -> str:
        if role not in auth.ROLES:
            raise StaffInvalidError(f"role {role[:32]!r} is unknown: use one of "
                                    f"{', '.join(auth.ROLES)}")
        return role

    @staticmethod
    def hash_new_password(password: str) -> str:
        """The policy, then the scrypt hash (InvalidStaff -> 422, never echoing the password)."""
        try:
            check_password(password)
            return hash_password(password)
        except (InvalidStaffError, PasswordPolicyError) as exc:
            raise StaffInvalidError(str(exc)) from None

    def check_new(self, name: str, role: str) -> None:
        """422 for a bad name or role (checked before a password is hashed)."""
        self._call(check_name, name)
        self._role(role)

    def add(self, name: str, role: str, password_hash: str, actor: str) -> None:
        """Create a new account (409 when the name is taken)."""
        self.check_new(name, role)
        self._call(self._store.staff.add, name, role, password_hash, actor)
        log.info("staff_added", role=role)

    def upsert(self, name: str, role: str, password_hash: str, actor: str) -> None:
        """Create or update (provisioning's add-staff): an update ends the account's sessions."""
        self.check_new(name, role)
        self._call(self._store.staff.upsert, name, role, password_hash, actor)
        self._end_sessions(name)
        log.info("staff_upserted", role=role)

    def set_disabled(self, name: str, disabled: bool, actor: str) -> None:
        name = self.existing(name)
        if disabled and name == actor:
            raise StaffConflictError("you cannot disable your own account: ask another "
                                     "supervisor")
        self._call(self._store.staff.set_disabled, name, disabled, actor)
        if disabled:
            self._end_sessions(name)
        log.info("staff_disabled" if disabled else "staff_enabled")

    def unlock(self, name: str, actor: str) -> int:
        """Clear the name's failed log-ins on every screen; audited with the count cleared."""
        name = self.existing(name)
        failures = self._throttle.failures(name) if self._throttle else 0
        if self._throttle is not None:
            self._throttle.unlock(name)
        self._call(self._store.audit_log.record, "staff_unlocked", actor, name,
                   f"failures={failures}")
        log.info("staff_unlocked", failures=failures)
        return failures

    def reset_password(self, name: str, password_hash: str, actor: str) -> None:
        """A new password: the account's sessions end and its back-off is cleared."""
        name = self.existing(name)
        self._call(self._store.staff.set_password, name, password_hash, actor)
        self._end_sessions(name)
        if self._throttle is not None:
            self._throttle.unlock(name)
        log.info("staff_password_reset")


def staff_admin(ctx: KioskContext) -> StaffAdmin:
    """The kiosk app's StaffAdmin (its sessions and back-off), made once per app."""
    admin = ctx.extras.get("staff_admin")
    if not isinstance(admin, StaffAdmin):
        admin = StaffAdmin(ctx.services.store, ctx.sessions, ctx.throttle)
        ctx.extras["staff_admin"] = admin
    return admin


# -- the routes -----------------------------------------------------------------------------
AdminDep = Annotated[auth.StaffSession,
                     Depends(require(auth.STAFF_ADMIN_ROLES, "administer staff accounts"))]

Name = Field(min_length=1, max_length=64)


class StaffRow(BaseModel):
    staff_id: str
    role: str
    disabled: bool
    locked_out: bool
    failures: int
    wait_s: int


class StaffList(BaseModel):
    staff: list[StaffRow]
    you: str


class NewStaff(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Name
    role: str = Field(min_length=1, max_length=32)
    password: str = Field(min_length=1, max_length=1024)


class StaffName(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Name


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Name
    password: str = Field(min_length=1, max_length=1024)


class StaffDone(BaseModel):
    staff_id: str
    message: str


@router.get("", response_model=StaffList)
def list_staff(session: AdminDep, ctx: ContextDep) -> StaffList:
    """Every staff account: name, role, disabled, and whether log-ins of it now wait."""
    rows = [StaffRow(**row) for row in staff_admin(ctx).accounts()]
    return StaffList(staff=rows, you=session.staff_id)


@router.post("", response_model=StaffDone, status_code=201,
             responses={409: {"description": "the name is taken"},
                        422: {"description": "bad name, role or password"}})
def add_staff(body: NewStaff, session: AdminDep, ctx: ContextDep) -> StaffDone:
    """Add a staff account (audited `staff_added`); an existing name is refused (409)."""
    admin = staff_admin(ctx)
    admin.check_new(body.staff_id, body.role)  # before the 32 MiB hash is made
    admin.add(body.staff_id, body.role, admin.hash_new_password(body.password),
              session.staff_id)
    return StaffDone(staff_id=body.staff_id,
                     message=f"{body.staff_id} ({body.role}) may log in now")


@router.post("/disable", response_model=StaffDone, responses={404: {}, 409: {}})
def disable_staff(body: StaffName, session: AdminDep, ctx: ContextDep) -> StaffDone:
    """Disable an account: it cannot log in, and its open sessions end at once."""
    staff_admin(ctx).set_disabled(body.staff_id, True, session.staff_id)
    return StaffDone(staff_id=body.staff_id, message=f"{body.staff_id} is disabled")


@router.post("/enable", response_model=StaffDone, responses={404: {}})
def enable_staff(body: StaffName, session: AdminDep, ctx: ContextDep) -> StaffDone:
    """Enable a disabled account again."""
    staff_admin(ctx).set_disabled(body.staff_id, False, session.staff_id)
    return StaffDone(staff_id=body.staff_id, message=f"{body.staff_id} may log in again")


@router.post("/unlock", response_model=StaffDone, responses={404: {}})
def unlock_staff(body: StaffName, session: AdminDep, ctx: ContextDep) -> StaffDone:
    """Clear the account's failed log-ins on every screen: its next log-in is checked now."""
    cleared = staff_admin(ctx).unlock(body.staff_id, session.staff_id)
    return StaffDone(staff_id=body.staff_id,
                     message=f"{body.staff_id} may log in again at once ({cleared} failed "
                             "log-in(s) cleared)")


@router.post("/password", response_model=StaffDone, responses={404: {}, 422: {}})
def reset_password(body: NewPassword, session: AdminDep, ctx: ContextDep) -> StaffDone:
    """Give an account a new password (the policy applies); its sessions end."""
    admin = staff_admin(ctx)
    admin.existing(body.staff_id)
    admin.reset_password(body.staff_id, admin.hash_new_password(body.password),
                         session.staff_id)
    return StaffDone(staff_id=body.staff_id,
                     message=f"{body.staff_id} has a new password: tell them in person")
