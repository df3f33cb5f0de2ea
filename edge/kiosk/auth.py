"""Staff sessions, login throttling (back-off, never a lock-out), and the kiosk's roles.

Sessions live in memory only (a reboot logs everyone out): the cookie carries a random token,
the table is keyed by the token's SHA-256, and each session holds its own CSRF token that every
mutating request must echo in the `X-CSRF-Token` header. Failed logins slow the next try of the
same name from the same screen down exponentially (`LoginThrottle`); nothing locks a name, so
an attacker cannot keep the right password out. Time comes from the injected Clock
(monotonic), so tests move it without sleeping.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from foundation.clock import Clock
from foundation.sessions import TokenSessions

SESSION_COOKIE = "cg_session"
CSRF_HEADER = "X-CSRF-Token"

# What each role may do. Staff accounts come from provisioning (`add-staff --role`).
ROLES = ("agent", "supervisor", "engineer")
ENROL_ROLES = frozenset({"agent", "supervisor"})
WITHDRAW_ROLES = frozenset({"agent", "supervisor"})
OVERRIDE_ROLES = frozenset({"supervisor"})
UNLOCK_ROLES = frozenset({"supervisor"})  # clear a name's failed log-ins
STAFF_ADMIN_ROLES = frozenset({"supervisor"})  # list, add, disable staff; reset passwords
VIEW_ROLES = frozenset(ROLES)
MAX_SESSIONS = 256


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


class SessionTable(TokenSessions[StaffSession]):
    """In-memory staff sessions with a fixed life (foundation.sessions), at most MAX_SESSIONS."""

    def __init__(self, clock: Clock, ttl_s: float) -> None:
        super().__init__(clock, ttl_s, MAX_SESSIONS)

    def create(self, staff_id: str, role: str) -> tuple[str, StaffSession]:
        """A new session; returns (cookie token, session). The oldest goes when the table fills."""
        return self.open(lambda key, created, expires: StaffSession(
            staff_id=staff_id, role=role, csrf_token=secrets.token_urlsafe(32), created=created,
            expires=expires, token_digest=key))

    def lookup(self, token: str | None) -> tuple[StaffSession | None, bool]:
        """(session, expired): (None, False) for no or unknown token, (None, True) if expired."""
        return self.find(token)

    def end(self, session: StaffSession) -> None:
        self.forget(session.token_digest)

    def end_all_for(self, staff_id: str) -> None:
        self.forget_where(lambda s: s.staff_id == staff_id)


def csrf_ok(session: StaffSession, presented: str | None) -> bool:
    """Constant-time comparison of the presented CSRF token with the session's."""
    if not presented:
        return False
    return hmac.compare_digest(session.csrf_token.encode(), presented.encode("utf-8", "replace"))


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0       # monotonic time of the latest failure


class LoginThrottle:
    """Slows password guessing down without ever locking the right password out.

    Failures are counted per (name, client) pair, per name from every client, and per client
    over every name; a client is an address plus the screen's device cookie (edge.kiosk.
    devices), so screens that share 127.0.0.1 are told apart. The delays:
    - a pair that failed `free_failures` times waits `base_s * 2**k` (at most `max_s`) after
      its latest failure before its next attempt is even checked;
    - a name that failed `name_slow_after` times from all clients together makes every pair of
      it that has failed at all wait (up to `name_max_s`): rotating screens buys an attacker
      one guess each, while a pair that never failed, the real user's, is never delayed by it;
    - a client that failed 4x `free_failures` times over any names waits likewise (one place
      guessing many names), which delays that screen only.
    Every wait runs from the pair's or the client's own latest failure, so no one else's
    attempts can extend it: after the wait the right password succeeds. Nothing is ever locked;
    a supervisor may still clear a name at once (`unlock`). Counts are forgotten `forget_s` after
    their latest failure; memory is bounded by `max_entries` per table.
    """

    def __init__(self, clock: Clock, *, free_failures: int = 5, forget_s: float = 300.0,
                 base_s: float = 1.0, max_s: float = 60.0, name_slow_after: int = 20,
                 name_max_s: float = 30.0, client_factor: int = 4,
                 max_entries: int = 10_000) -> None:
        self._clock = clock
        self._free = max(1, int(free_failures))
        self._forget = float(forget_s)
        self._base = float(base_s)
        self._max = float(max_s)
        self._name_after = max(1, int(name_slow_after))
        self._name_max = float(name_max_s)
        self._client_free = self._free * max(1, int(client_factor))
        self._max_entries = int(max_entries)
        self._lock = threading.Lock()
        self._pairs: dict[tuple[str, str], _Failures] = {}
        self._names: dict[str, _Failures] = {}
        self._clients: dict[str, _Failures] = {}

    # -- the three delays ------------------------------------------------------------------
    def _backoff(self, failures: int, free: int, ceiling: float) -> float:
        if failures < free:
            return 0.0
        return min(ceiling, self._base * 2.0 ** min(failures - free, 60))

    def _live(self, table: dict[Any, _Failures], key: Any, now: float) -> _Failures | None:
        entry = table.get(key)
        if entry is not None and now - entry.last >= self._forget:
            del table[key]
            return None
        return entry

    def retry_after(self, name: str, client: str) -> float:
        """Seconds until this client may try this name again (0: the attempt is checked now)."""
        now = self._clock.monotonic()
        key = _name_key(name)
        with self._lock:
            pair = self._live(self._pairs, (key, client), now)
            named = self._live(self._names, key, now)
            by_client = self._live(self._clients, client, now)
            wait = 0.0
            if pair is not None:
                delay = self._backoff(pair.count, self._free, self._max)
                if named is not None and named.count >= self._name_after:
                    extra = (named.count - self._name_after) // self._free
                    delay = max(delay, min(self._name_max, self._base * 2.0 ** min(extra, 60)))
                wait = max(wait, pair.last + delay - now)
            if by_client is not None:
                delay = self._backoff(by_client.count, self._client_free, self._max)
                wait = max(wait, by_client.last + delay - now)
        return max(0.0, wait)

    def failure(self, name: str, client: str) -> None:
        now = self._clock.monotonic()
        key = _name_key(name)
        with self._lock:
            self._count(self._pairs, (key, client), now)
            self._count(self._names, key, now)
            self._count(self._clients, client, now)

    def _count(self, table: dict[Any, _Failures], key: Any, now: float) -> None:
        entry = self._live(table, key, now) or _Failures()
        entry.count += 1
        entry.last = now
        table[key] = entry
        if len(table) > self._max_entries:
            self._prune(table, now)

    def success(self, name: str, client: str) -> None:
        """The right password: this pair starts afresh (the name's and the client's counts
        stay, so a known password does not wipe a guesser's progress elsewhere)."""
        with self._lock:
            self._pairs.pop((_name_key(name), client), None)

    def unlock(self, name: str) -> int:
        """Forget every failure of `name` (a supervisor's unlock); returns the pairs cleared.
        The screens that failed it lose those failures from their own count too, so the
        unlocked name's next try is checked at once (their failures of other names stay)."""
        key = _name_key(name)
        with self._lock:
            pairs = [k for k in self._pairs if k[0] == key]
            for k in pairs:
                entry = self._pairs.pop(k)
                by_client = self._clients.get(k[1])
                if by_client is not None:
                    by_client.count -= entry.count
                    if by_client.count <= 0:
                        del self._clients[k[1]]
            self._names.pop(key, None)
        return len(pairs)

    def waiting_s(self, name: str) -> float:
        """The longest wait any screen now has before its next try of `name` (0: none waits);
        the staff screen shows a name with a wait as locked out."""
        key = _name_key(name)
        with self._lock:
            clients = [k[1] for k in self._pairs if k[0] == key]
        return max((self.retry_after(name, c) for c in clients), default=0.0)

    def failures(self, name: str) -> int:
        """Recent failures of `name` from every client (for the unlock answer and tests)."""
        with self._lock:
            entry = self._live(self._names, _name_key(name), self._clock.monotonic())
            return entry.count if entry is not None else 0

    def _prune(self, table: dict[Any, _Failures], now: float) -> None:
        for k in [k for k, e in table.items() if now - e.last >= self._forget]:
            del table[k]
        if len(table) > self._max_entries:  # a spray of names: the oldest go first
            for k, _ in sorted(table.items(), key=lambda item: item[1].last)[
                    :len(table) - self._max_entries]:
                del table[k]


def _name_key(name: str) -> str:
    return name.casefold()
