"""The outbox boundary: where closed, disclosure-controlled windows wait for central's ack.

The real outbox is a table inside the encrypted consent store (`ConsentStore` satisfies
`Outbox`); `MemoryOutbox` is the in-memory stand-in beside it for unit tests and demos. The
sequence number an append returns is the window's per-device sequence number on the wire.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Outbox(Protocol):
    def outbox_append(self, payload: bytes) -> int:
        """Store one payload; return its sequence number (strictly increasing)."""
        ...

    def outbox_pending(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` unacknowledged (seq, payload), oldest first."""
        ...

    def outbox_ack(self, seq: int) -> None:
        """Central holds window `seq`: it leaves the outbox."""
        ...


class MemoryOutbox:
    """An in-memory Outbox (lost on restart: use the consent store in production)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 1
        self._rows: dict[int, bytes] = {}

    def outbox_append(self, payload: bytes) -> int:
        with self._lock:
            seq = self._next
            self._next += 1
            self._rows[seq] = bytes(payload)
            return seq

    def outbox_pending(self, limit: int) -> list[tuple[int, bytes]]:
        with self._lock:
            return [(s, self._rows[s]) for s in sorted(self._rows)[:limit]]

    def outbox_ack(self, seq: int) -> None:
        with self._lock:
            self._rows.pop(seq, None)
