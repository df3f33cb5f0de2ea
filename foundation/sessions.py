"""Log-in sessions held in memory (the kiosk's staff, central's dashboard): the cookie carries a
random token, the table is keyed by the token's SHA-256 (a token is never kept), each session has
a fixed life, and the table is bounded (expired sessions go first, then the oldest).

Time comes from the injected Clock (monotonic), so tests move it without sleeping. What a
session holds beyond its times is the caller's (see edge.kiosk.auth, central.auth).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from foundation.clock import Clock

MAX_TOKEN_CHARS = 128  # a longer cookie is no token of ours: not even hashed


class Timed(Protocol):
    created: float  # monotonic
    expires: float  # monotonic


S = TypeVar("S", bound=Timed)


def token_digest(token: str) -> str:
    """The key a session is kept under: the SHA-256 of its cookie token, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenSessions(Generic[S]):
    """At most `max_sessions` sessions, each living `ttl_s` seconds from its creation."""

    def __init__(self, clock: Clock, ttl_s: float, max_sessions: int) -> None:
        self._clock, self._ttl, self._max = clock, float(ttl_s), int(max_sessions)
        self._lock = threading.Lock()
        self._table: dict[str, S] = {}

    def open(self, make: Callable[[str, float, float], S]) -> tuple[str, S]:
        """A new random cookie token and the session `make(digest, created, expires)` builds
        for it; when the table is full the oldest session goes."""
        token = secrets.token_urlsafe(32)
        now = self._clock.monotonic()
        key = token_digest(token)
        session = make(key, now, now + self._ttl)
        with self._lock:
            for old in [k for k, s in self._table.items() if now >= s.expires]:
                del self._table[old]
            if len(self._table) >= self._max:
                del self._table[min(self._table, key=lambda k: self._table[k].created)]
            self._table[key] = session
        return token, session

    def find(self, token: str | None) -> tuple[S | None, bool]:
        """(session, expired): (None, False) for no or an unknown token, (None, True) for one
        whose session has expired (it is dropped)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None, False
        key = token_digest(token)
        with self._lock:
            session = self._table.get(key)
            if session is None:
                return None, False
            if self._clock.monotonic() >= session.expires:
                del self._table[key]
                return None, True
            return session, False

    def forget(self, key: str) -> None:
        """End the session kept under `key` (its token's digest), if there is one."""
        with self._lock:
            self._table.pop(key, None)

    def forget_where(self, ended: Callable[[S], bool]) -> None:
        """End every session for which `ended(session)` is true."""
        with self._lock:
            for key in [k for k, s in self._table.items() if ended(s)]:
                del self._table[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._table)
