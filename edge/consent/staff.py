"""Staff accounts of the kiosk, kept in the consent store's database (password hashes only).

Every change is audited with the account name and role, never a password or its hash.
"""

from __future__ import annotations

from edge.consent.audit import AuditLog
from edge.consent.database import StoreDatabase
from edge.consent.errors import InvalidConsentError, InvalidStaffError
from edge.consent.records import Staff, bounded_text
from foundation.clock import Clock


class StaffAccounts:
    """The `staff` table: create, update, disable, read."""

    def __init__(self, db: StoreDatabase, audit: AuditLog, clock: Clock) -> None:
        self._db = db
        self._audit = audit
        self._clock = clock

    def upsert(self, name: str, role: str, password_hash: str) -> None:
        """Create or update a staff account (the hash comes from edge.kiosk.passwords)."""
        try:
            name = bounded_text(name, "staff name", 64)
            role = bounded_text(role, "staff role", 32)
            password_hash = bounded_text(password_hash, "password hash", 512)
        except InvalidConsentError as exc:
            raise InvalidStaffError(str(exc)) from None
        with self._db.write() as conn:
            conn.execute("INSERT INTO staff (name, role, password_hash, disabled, updated_at) "
                         "VALUES (?, ?, ?, 0, ?) ON CONFLICT(name) DO UPDATE SET role = "
                         "excluded.role, password_hash = excluded.password_hash, updated_at = "
                         "excluded.updated_at", (name, role, password_hash, self._clock.now()))
            self._audit.record_in(conn, "staff_upserted", "provisioning", name, role)

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
