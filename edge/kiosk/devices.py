"""Kiosk screens told apart: a random device cookie per browser, issued at its first visit.

Every screen on the box itself reaches the kiosk from 127.0.0.1, so the client address alone
cannot tell the real supervisor's screen from an attacker's process on the same box. The page
(and a log-in that arrives without one) sets `cg_device`, a random HttpOnly token the server
remembers by its SHA-256; the log-in throttle keys failures by address plus that device, so an
attacker's failures slow the attacker's own client down, not the screen beside it.

Bounded: at most `max_devices` are remembered, and one address is given at most
`per_address` new ones an hour (a process minting cookies in a loop gets a few, then none, and
shares the address's cookie-less bucket). When the table is full, the least recently seen
device that never logged in goes first, so a flood of fresh cookies cannot push out the screens
staff actually use. An unknown or missing cookie is the address's shared, cookie-less client.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from foundation.clock import Clock

DEVICE_COOKIE = "cg_device"
COOKIE_MAX_AGE_S = 400 * 24 * 3600  # browsers cap cookie life at about 400 days
ISSUE_WINDOW_S = 3600.0
NO_DEVICE = "-"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass
class _Device:
    device_id: str          # a short public id (digest prefix): logs and throttle keys
    last_seen: float        # monotonic
    trusted: bool = False   # a staff member logged in from it at least once


class DeviceTable:
    """Remembered kiosk screens (in memory; a restart issues new cookies on the next visit)."""

    def __init__(self, clock: Clock, *, max_devices: int = 64, per_address: int = 8) -> None:
        self._clock = clock
        self._max = max(1, int(max_devices))
        self._per_address = max(1, int(per_address))
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}
        self._issued: dict[str, list[float]] = {}

    def lookup(self, token: str | None) -> str | None:
        """The device id of a remembered cookie (and it counts as seen now), else None."""
        if not token or len(token) > 128:
            return None
        with self._lock:
            device = self._devices.get(_digest(token))
            if device is None:
                return None
            device.last_seen = self._clock.monotonic()
            return device.device_id

    def client_key(self, address: str, token: str | None) -> str:
        """What the log-in throttle counts by: the address and the screen's device."""
        return f"{address}|{self.lookup(token) or NO_DEVICE}"

    def issue(self, address: str) -> str | None:
        """A new device cookie value for a browser at `address`; None once that address had its
        `per_address` new cookies in the last hour."""
        now = self._clock.monotonic()
        with self._lock:
            recent = [t for t in self._issued.get(address, []) if now - t < ISSUE_WINDOW_S]
            if len(recent) >= self._per_address:
                self._issued[address] = recent
                return None
            recent.append(now)
            self._issued[address] = recent
            if len(self._issued) > 4 * self._max:  # bound the per-address history too
                self._issued = {a: ts for a, ts in self._issued.items()
                                if ts and now - ts[-1] < ISSUE_WINDOW_S}
            token = secrets.token_urlsafe(32)
            digest = _digest(token)
            while len(self._devices) >= self._max:
                self._evict()
            self._devices[digest] = _Device(device_id=digest[:12], last_seen=now)
            return token

    def trust(self, token: str | None) -> None:
        """A staff member logged in from this screen: keep it before untrusted ones."""
        if not token or len(token) > 128:
            return
        with self._lock:
            device = self._devices.get(_digest(token))
            if device is not None:
                device.trusted = True

    def __len__(self) -> int:
        with self._lock:
            return len(self._devices)

    def _evict(self) -> None:
        untrusted = [(d.last_seen, k) for k, d in self._devices.items() if not d.trusted]
        pool = untrusted or [(d.last_seen, k) for k, d in self._devices.items()]
        del self._devices[min(pool)[1]]
