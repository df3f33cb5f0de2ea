"""The fleet dashboard's sessions, log-in back-off and Origin rule.

- Sessions live in memory (a restart logs everyone out): the cookie carries a random token, the
  table is keyed by its SHA-256, each session has a fixed life (`ttl_s`, default 8 h).
- Failed log-ins slow the next try down, never lock a name out: a (name, client) pair that failed
  `free_failures` times waits `base_s * 2**k` (at most `max_s`) after its latest failure, and a
  client that failed 4x as often over any names waits likewise. After the wait the right
  password succeeds. Counts are forgotten `forget_s` after their latest failure; memory is bounded.
- Every state-changing request (POST) must carry an `Origin` header equal to one of the
  dashboard's own origins (`--origin`, default the bound address): no Origin, `null` or another
  site is refused. With the session cookie's `SameSite=Strict` this is the CSRF defence.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from foundation.clock import Clock
from foundation.sessions import MAX_TOKEN_CHARS, TokenSessions, token_digest

MAX_SESSIONS = 512
MAX_ENTRIES = 10_000


@dataclass
class Session:
    name: str
    role: str
    expires: float          # monotonic
    created: float
    key: str = field(repr=False, default="")


class Sessions(TokenSessions[Session]):
    """In-memory sessions with a fixed life (foundation.sessions); the oldest goes when the
    table is full."""

    def __init__(self, clock: Clock, ttl_s: float = 8 * 3600.0) -> None:
        super().__init__(clock, ttl_s, MAX_SESSIONS)

    def create(self, name: str, role: str) -> str:
        token, _ = self.open(lambda key, created, expires: Session(name, role, expires, created,
                                                                   key))
        return token

    def lookup(self, token: str | None) -> Session | None:
        return self.find(token)[0]

    def end(self, token: str | None) -> None:
        if token and len(token) <= MAX_TOKEN_CHARS:
            self.forget(token_digest(token))


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


class Backoff:
    """See the module docstring: delays after failures, never a lock-out."""

    def __init__(self, clock: Clock, *, free_failures: int = 5, base_s: float = 1.0,
                 max_s: float = 60.0, forget_s: float = 900.0, client_factor: int = 4) -> None:
        self._clock = clock
        self._free, self._base, self._max = max(1, free_failures), base_s, max_s
        self._forget = forget_s
        self._client_free = self._free * max(1, client_factor)
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, str], _Failures] = {}
        self._clients: dict[str, _Failures] = {}

    def _delay(self, entry: _Failures | None, free: int, now: float) -> float:
        if entry is None or now - entry.last >= self._forget or entry.count < free:
            return 0.0
        delay = min(self._max, self._base * 2.0 ** min(entry.count - free, 60))
        return max(0.0, entry.last + delay - now)

    def retry_after(self, name: str, client: str) -> float:
        """Seconds until this client may try this name (0: the attempt is checked now)."""
        now = self._clock.monotonic()
        with self._lock:
            return max(self._delay(self._pairs.get((name.casefold(), client)), self._free, now),
                       self._delay(self._clients.get(client), self._client_free, now))

    def failure(self, name: str, client: str) -> None:
        now = self._clock.monotonic()
        with self._lock:
            self._count(self._pairs, (name.casefold(), client), now)
            self._count(self._clients, client, now)

    def _count(self, table: dict[Any, _Failures], key: Any, now: float) -> None:
        entry = table.get(key)
        if entry is None or now - entry.last >= self._forget:
            entry = _Failures()
        entry.count += 1
        entry.last = now
        table[key] = entry
        if len(table) > MAX_ENTRIES:
            self._prune(table, now)

    def success(self, name: str, client: str) -> None:
        with self._lock:
            self._pairs.pop((name.casefold(), client), None)

    def _prune(self, table: dict[Any, _Failures], now: float) -> None:
        for key in [k for k, e in table.items() if now - e.last >= self._forget]:
            del table[key]
        for key, _ in sorted(table.items(), key=lambda kv: kv[1].last)[:len(table) - MAX_ENTRIES]:
            del table[key]


def normal_origin(text: str) -> str | None:
    """`scheme://host[:port]` in lower case with the default port dropped, or None."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def origin_allowed(presented: str | None, allowed: frozenset[str]) -> bool:
    """Strict: the request's Origin header must be one of `allowed` (already normalised)."""
    if not presented or len(presented) > 300:
        return False
    found = normal_origin(presented)
    return found is not None and found in allowed
