"""Staff accounts of the kiosk, kept in the consent store's database (password hashes only).

Also the account rules every way in shares (provisioning's `add-staff`, the kiosk's staff
screen, the daemon's admin socket): `check_name` and `check_password` (the password policy:
at least 12 characters, no white space at either end). Every change is audited with the account
name, the actor and the role, never a password or its hash.
"""

from __future__ import annotations

import re

from edge.consent.audit import AuditLog
from edge.consent.database import StoreDatabase
from edge.consent.errors import InvalidConsentError, InvalidStaffError
from edge.consent.records import Staff, bounded_text
from foundation.clock import Clock

MIN_PASSWORD_CHARS = 12
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class StaffExistsError(InvalidStaffError):
    """An account of that name exists already (adding refuses to overwrite it)."""


def check_name(name: str) -> str:
    """`name` when it is a valid staff login name, else InvalidStaffError (name not echoed
    beyond its first 64 characters)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidStaffError(f"staff name {str(name)[:64]!r} is not allowed: use 1-64 "
                                "letters, digits, '.', '_', '-' or '@', starting with a letter "
                                "or digit")
    return name


def check_password(password: str) -> str:
    """`password` when it meets the policy, else InvalidStaffError (never echoing it)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InvalidStaffError(f"the password is shorter than {MIN_PASSWORD_CHARS} characters: "
                                "choose a longer one")
    if password != password.strip():
        raise InvalidStaffError("the password starts or ends with white space: choose one "
                                "without")
    return password


class StaffAccounts:
    """The `staff` table: create, update, disable, read."""

    def __init__(self, db: StoreDatabase, audit: AuditLog, clock: Clock) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock

    @staticmethod
    def _fields(name: str, role: str, password_hash: str) -> tuple[str, str, str]:
        try:
            return (bounded_text(name, "staff name", 64), bounded_text(role, "staff role", 32),
                    bounded_text(password_hash, "password hash", 512))
        except InvalidConsentError as exc:
            raise InvalidStaffError(str(exc)) from None

    def upsert(self, name: str, role: str, password_hash: str,
               actor: str = "provisioning") -> None:
        """Create or update a staff account (the hash comes from edge.kiosk.passwords)."""
        name, role, password_hash = self._fields(name, role, password_hash)
        with self._db.write() as conn:
            conn.execute("INSERT INTO staff (name, role, password_hash, disabled, updated_at) "
                         "VALUES (?, ?, ?, 0, ?) ON CONFLICT(name) DO UPDATE SET role = "
                         "excluded.role, password_hash = excluded.password_hash, updated_at = "
                         "excluded.updated_at", (name, role, password_hash, self._clock.now()))
            self._audit.record_in(conn, "staff_upserted", bounded_text(actor, "actor", 64),
                                  name, role)

    def add(self, name: str, role: str, password_hash: str, actor: str) -> None:
        """Create a new account; StaffExistsError when the name is taken (nothing changes)."""
        name, role, password_hash = self._fields(name, role, password_hash)
        with self._db.write() as conn:
            taken = conn.execute("SELECT 1 FROM staff WHERE name = ?", (name,)).fetchone()
            if taken:
                raise StaffExistsError(f"there is already a staff account {name!r}: reset its "
                                       "password or pick another name")
            conn.execute("INSERT INTO staff (name, role, password_hash, disabled, updated_at) "
                         "VALUES (?, ?, ?, 0, ?)", (name, role, password_hash, self._clock.now()))
            self._audit.record_in(conn, "staff_added", bounded_text(actor, "actor", 64), name,
                                  role)

    def set_password(self, name: str, password_hash: str, actor: str) -> bool:
        """Replace an account's password hash; returns whether the account exists."""
        _, _, password_hash = self._fields(name, "-", password_hash)
        with self._db.write() as conn:
            n = conn.execute("UPDATE staff SET password_hash = ?, updated_at = ? WHERE name = ?",
                             (password_hash, self._clock.now(), str(name))).rowcount
            if n:
                self._audit.record_in(conn, "staff_password_reset",
                                      bounded_text(actor, "actor", 64), str(name), None)
        return bool(n)

    def set_disabled(self, name: str, disabled: bool, actor: str = "provisioning") -> bool:
        """Disable or re-enable an account; returns whether it exists."""
        with self._db.write() as conn:
            n = conn.execute("UPDATE staff SET disabled = ?, updated_at = ? WHERE name = ?",
                             (int(bool(disabled)), self._clock.now(), str(name))).rowcount
            if n:
                self._audit.record_in(conn, "staff_disabled" if disabled else "staff_enabled",
                                      bounded_text(actor, "actor", 64), str(name), None)
        return bool(n)

    def get(self, name: str) -> Staff | None:
        rows = self._db.read("SELECT name, role, password_hash, disabled FROM staff WHERE "
                             "name = ?", (str(name),))
        return Staff(rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3])) if rows else None

    def all(self) -> list[Staff]:
        return [Staff(n, r, h, bool(d)) for n, r, h, d in self._db.read(
            "SELECT name, role, password_hash, disabled FROM staff ORDER BY name")]
