"""The outbox boundary: where closed, disclosure-controlled windows wait for central's ack.

The real outbox is a table inside the encrypted consent store (`ConsentStore.outbox` satisfies
`Outbox`); `MemoryOutbox` is the in-memory stand-in beside it for unit tests and demos. The
sequence number an append returns is the window's per-device sequence number on the wire.

Epochs: every row also carries the store's epoch at its append, a random number in
1..wire.telemetry.MAX_EPOCH that `renew_epoch()` replaces. The uplink renews it once per run
(each daemon start), before that run's first append, so a store restored from a backup or cloned
onto a second box, whose sequence numbers repeat ones already sent, sends them under a new
epoch (a new store gets its first epoch from the schema migration that creates it): central keys
windows by (device, epoch, seq) and stores a new epoch's windows instead of taking them for
duplicates. Rows queued before epochs existed carry epoch 0.

`OpenWindowStore` is the optional second half: where the raw counts of the window in progress
are kept (a table inside the same encrypted store), so a stop or restart loses none of them.
An append that names its `window_start` removes that window's saved counts in the same
transaction, so a window is either open in the store or queued in the outbox, never both.
"""

from __future__ import annotations

import secrets
import threading
from typing import Protocol, runtime_checkable

from wire.telemetry import MAX_EPOCH


class Outbox(Protocol):
    def append(self, payload: bytes) -> int:
        """Store one payload; return its sequence number (strictly increasing)."""
        ...

    def pending(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` unacknowledged (seq, payload), oldest first."""
        ...

    def pending_windows(self, limit: int) -> list[tuple[int, int, bytes]]:
        """Up to `limit` unacknowledged (seq, epoch, payload), oldest first."""
        ...

    def ack(self, seq: int) -> None:
        """Central holds window `seq`: it leaves the outbox."""
        ...

    def renew_epoch(self) -> int:
        """A new random epoch for the rows appended from now on; returns it."""
        ...


@runtime_checkable
class OpenWindowStore(Protocol):
    def append(self, payload: bytes, window_start: int | None = None) -> int:
        """As Outbox.append; also drops the saved open window `window_start`."""
        ...

    def save_open_window(self, window_start: int, window_s: int, counts: dict[str, int]) -> None:
        """Keep (replace) the raw counts of the open window `window_start`."""
        ...

    def load_open_windows(self) -> list[tuple[int, int, dict[str, int]]]:
        """Saved open windows (window_start, window_s, counts), oldest first."""
        ...


def new_epoch() -> int:
    """A random epoch in 1..MAX_EPOCH (0 is the epoch of rows from before epochs)."""
    return 1 + secrets.randbelow(MAX_EPOCH)


class MemoryOutbox:
    """An in-memory Outbox (lost on restart: use the consent store in production)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 1
        self._epoch = new_epoch()
        self._rows: dict[int, tuple[int, bytes]] = {}
        self._open: dict[int, tuple[int, dict[str, int]]] = {}

    def append(self, payload: bytes, window_start: int | None = None) -> int:
        with self._lock:
            seq = self._next
            self._next += 1
            self._rows[seq] = (self._epoch, bytes(payload))
            if window_start is not None:
                self._open.pop(int(window_start), None)
            return seq

    def save_open_window(self, window_start: int, window_s: int, counts: dict[str, int]) -> None:
        with self._lock:
            self._open[int(window_start)] = (int(window_s), dict(counts))

    def load_open_windows(self) -> list[tuple[int, int, dict[str, int]]]:
        with self._lock:
            return [(s, n, dict(c)) for s, (n, c) in sorted(self._open.items())]

    def pending(self, limit: int) -> list[tuple[int, bytes]]:
        return [(s, p) for s, _e, p in self.pending_windows(limit)]

    def pending_windows(self, limit: int) -> list[tuple[int, int, bytes]]:
        with self._lock:
            return [(s, *self._rows[s]) for s in sorted(self._rows)[:limit]]

    def renew_epoch(self) -> int:
        with self._lock:
            self._epoch = new_epoch()
            return self._epoch

    @property
    def epoch(self) -> int:
        return self._epoch

    def ack(self, seq: int) -> None:
        with self._lock:
            self._rows.pop(seq, None)
