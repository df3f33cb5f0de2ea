"""The fleet dashboard's log-ins, kept in the central database (`dashboard_users`: PostgreSQL
migration 4 in central.pg_schema, the SQLite file's table in central.windows_db).

A user has a name (1-64 letters, digits, '.', '_', '-'), a role (`viewer`: the charts, tables
and JSON; `admin`: also the roll-up refresh and the admin view) and a scrypt hash
(foundation.passwords). Plain passwords are never stored, logged or returned.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass

from central.db_access import Central
from central.errors import CollectorError
from foundation.passwords import hash_new_password, hash_password, verify_password

ROLES = ("viewer", "admin")
MIN_PASSWORD_CHARS = 12
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so an unknown name costs what a known one
    does."""
    return hash_password("consentgate-dashboard-no-such-user")


class UserError(CollectorError):
    """A user that cannot be added (bad name, role or password)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(f"user name {name[:80]!r}: give 1-64 letters, digits, '.', '_' or '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password has {len(password)} characters: choose one of "
                        f"{MIN_PASSWORD_CHARS} or more")
    return password


def add_user(db: Central, name: str, role: str, password: str) -> bool:
    """Create `name` or replace its role and password; True when it is new."""
    check_name(name)
    if role not in ROLES:
        raise UserError(f"role {role!r}: give one of {', '.join(ROLES)}")
    check_password(password)
    encoded = hash_new_password(password, UserError)
    existed = bool(db.rows("SELECT 1 FROM dashboard_users WHERE name = ?", (name,)))
    db.write("INSERT INTO dashboard_users (name, role, password_hash, updated_at) "
             "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET role = excluded.role, "
             "password_hash = excluded.password_hash, updated_at = excluded.updated_at",
             (name, role, encoded, time.time()))
    return not existed


def authenticate(db: Central, name: str, password: str) -> User | None:
    """The user when `password` is theirs, else None (same cost for an unknown name)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        verify_password(password, _dummy_hash())
        return None
    found = db.rows("SELECT role, password_hash FROM dashboard_users WHERE name = ?", (name,))
    if not found:
        verify_password(password, _dummy_hash())
        return None
    role, encoded = found[0]
    if not verify_password(password, encoded) or role not in ROLES:
        return None
    return User(name, role)


def user_count(db: Central) -> int:
    return int(db.rows("SELECT count(*) FROM dashboard_users")[0][0])
