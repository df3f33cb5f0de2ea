"""Staff sessions, login throttling and lock-out, and the role model of the kiosk.

Sessions live in memory only (a reboot logs everyone out): the cookie carries a random token,
the table is keyed by the token's SHA-256, and each session holds its own CSRF token that every
mutating request must echo in the `X-CSRF-Token` header. Failed logins are counted per account
name and per client address; after `max_login_failures` the name is locked for `lockout_s`.
Time comes from the injected Clock (monotonic), so tests move it without sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass, field

from foundation.clock import Clock

SESSION_COOKIE = "cg_session"
CSRF_HEADER = "X-CSRF-Token"

# What each role may do. Staff accounts come from provisioning (`add-staff --role`).
ROLES = ("agent", "supervisor", "engineer")
ENROL_ROLES = frozenset({"agent", "supervisor"})
WITHDRAW_ROLES = frozenset({"agent", "supervisor"})
OVERRIDE_ROLES = frozenset({"supervisor"})
VIEW_ROLES = frozenset(ROLES)
MAX_SESSIONS = 256


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class StaffSession:
    staff_id: str
    role: str
    csrf_token: str
    created: float          # monotonic
    expires: float          # monotonic
    token_digest: str = field(repr=False, default="")

    def may(self, roles: frozenset[str]) -> bool:
        return self.role in roles


class SessionTable:
    """In-memory staff sessions with a fixed life."""

    def __init__(self, clock: Clock, ttl_s: float) -> None:
        self._clock = clock
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._sessions: dict[str, StaffSession] = {}

    def create(self, staff_id: str, role: str) -> tuple[str, StaffSession]:
        """A new session; returns (cookie token, session). The oldest goes when the table fills."""
        token = secrets.token_urlsafe(32)
        now = self._clock.monotonic()
        session = StaffSession(staff_id=staff_id, role=role, csrf_token=secrets.token_urlsafe(32),
                               created=now, expires=now + self._ttl, token_digest=_digest(token))
        with self._lock:
            self._drop_expired(now)
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.created)
                self._sessions.pop(oldest.token_digest, None)
            self._sessions[session.token_digest] = session
        return token, session

    def lookup(self, token: str | None) -> tuple[StaffSession | None, bool]:
        """(session, expired): (None, False) for no or unknown token, (None, True) if expired."""
        if not token or len(token) > 128:
            return None, False
        key = _digest(token)
        now = self._clock.monotonic()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None, False
            if now >= session.expires:
                del self._sessions[key]
                return None, True
            return session, False

    def end(self, session: StaffSession) -> None:
        with self._lock:
            self._sessions.pop(session.token_digest, None)

    def end_all_for(self, staff_id: str) -> None:
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.staff_id == staff_id]:
                del self._sessions[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _drop_expired(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if now >= s.expires]:
            del self._sessions[key]


def csrf_ok(session: StaffSession, presented: str | None) -> bool:
    """Constant-time comparison of the presented CSRF token with the session's."""
    if not presented:
        return False
    return hmac.compare_digest(session.csrf_token.encode(), presented.encode("utf-8", "replace"))


class LoginThrottle:
    """Counts failed logins per account name and per client; locks after too many.

    A name is locked for `lockout_s` after `max_failures` failures within `lockout_s`; a client
    address after 4x that many (guessing many names from one place). Success clears the name.
    """

    def __init__(self, clock: Clock, max_failures: int, lockout_s: float,
                 client_factor: int = 4) -> None:
        self._clock = clock
        self._max = max_failures
        self._window = lockout_s
        self._client_max = max_failures * client_factor
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}

    def retry_after(self, name: str, client: str) -> float:
        """Seconds until `name`/`client` may try again; 0 when not locked."""
        now = self._clock.monotonic()
        with self._lock:
            waits = [self._locked_until.get(k, 0.0) - now for k in self._keys(name, client)]
        return max(0.0, *waits)

    def failure(self, name: str, client: str) -> None:
        now = self._clock.monotonic()
        with self._lock:
            for key, limit in zip(self._keys(name, client), (self._max, self._client_max),
                                  strict=True):
                recent = [t for t in self._failures.get(key, []) if now - t < self._window]
                recent.append(now)
                if len(recent) >= limit:
                    self._locked_until[key] = now + self._window
                    recent = []
                self._failures[key] = recent
            if len(self._failures) > 10_000:  # bound memory under a spray of names
                self._failures = {k: v for k, v in self._failures.items() if v}

    def success(self, name: str) -> None:
        with self._lock:
            self._failures.pop(self._name_key(name), None)

    @staticmethod
    def _name_key(name: str) -> str:
        return "name:" + name.casefold()

    def _keys(self, name: str, client: str) -> tuple[str, str]:
        return self._name_key(name), "client:" + client
