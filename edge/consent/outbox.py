"""Telemetry's durable queue inside the encrypted store: the outbox and the open window.

The outbox holds opaque, already anonymised payloads until central acknowledges them; the open
window holds the raw counts of the telemetry window in progress so a restart loses none (they
never leave the box raw). Each outbox row carries the store's telemetry epoch at its append
(`telemetry_epoch`, schema migration 3; `renew_epoch()` replaces it, see edge.telemetry.outbox).
"""

from __future__ import annotations

import json
import secrets

import structlog

from edge.consent.database import StoreDatabase
from foundation.clock import Clock
from wire.telemetry import MAX_EPOCH

log = structlog.get_logger(__name__)


class Outbox:
    """The `outbox`, `telemetry_epoch` and `open_window` tables."""

    def __init__(self, db: StoreDatabase, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def append(self, payload: bytes, window_start: int | None = None) -> int:
        """Queue an opaque telemetry payload; returns its sequence number (never reused).

        With `window_start`, the saved open-window counts of that window are deleted in the same
        transaction: a closed window is either still open in the store or in the outbox, never
        both (so a restart can neither lose nor repeat it).
        """
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError("outbox payloads are bytes")
        with self._db.write() as conn:
            cur = conn.execute("INSERT INTO outbox (created_at, payload, epoch) VALUES (?, ?, "
                               "(SELECT epoch FROM telemetry_epoch WHERE id = 1))",
                               (self._clock.now(), bytes(payload)))
            if window_start is not None:
                conn.execute("DELETE FROM open_window WHERE window_start = ?",
                             (int(window_start),))
            return int(cur.lastrowid)

    def pending(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """Unacknowledged payloads, oldest first."""
        return [(int(s), bytes(p)) for s, p in self._db.read(
            "SELECT seq, payload FROM outbox ORDER BY seq LIMIT ?", (max(0, int(limit)),))]

    def pending_windows(self, limit: int = 100) -> list[tuple[int, int, bytes]]:
        """Unacknowledged (seq, epoch, payload), oldest first."""
        return [(int(s), int(e), bytes(p)) for s, e, p in self._db.read(
            "SELECT seq, epoch, payload FROM outbox ORDER BY seq LIMIT ?",
            (max(0, int(limit)),))]

    @property
    def epoch(self) -> int:
        """The epoch the next append gets."""
        return int(self._db.read("SELECT epoch FROM telemetry_epoch WHERE id = 1")[0][0])

    def renew_epoch(self) -> int:
        """Replace the store's telemetry epoch with a new random one (1..MAX_EPOCH)."""
        epoch = 1 + secrets.randbelow(MAX_EPOCH)
        with self._db.write() as conn:
            conn.execute("UPDATE telemetry_epoch SET epoch = ?, renewed_at = ? WHERE id = 1",
                         (epoch, self._clock.now()))
        return epoch

    def ack(self, seq: int) -> None:
        """Delete an acknowledged payload (idempotent)."""
        with self._db.write() as conn:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (int(seq),))

    def save_open_window(self, window_start: int, window_s: int, counts: dict[str, int]) -> None:
        """Keep the raw counts of telemetry's open window (inside the encrypted store only)."""
        body = json.dumps({str(k): int(v) for k, v in counts.items()}, sort_keys=True)
        with self._db.write() as conn:
            conn.execute("INSERT INTO open_window (window_start, window_s, counts, saved_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT(window_start) DO UPDATE SET "
                         "window_s = excluded.window_s, counts = excluded.counts, "
                         "saved_at = excluded.saved_at",
                         (int(window_start), int(window_s), body, self._clock.now()))

    def load_open_windows(self) -> list[tuple[int, int, dict[str, int]]]:
        """Saved open windows (window_start, window_s, raw counts), oldest first; rows that do
        not parse are dropped from the result (and logged by count only)."""
        out: list[tuple[int, int, dict[str, int]]] = []
        bad = 0
        for start, length, body in self._db.read(
                "SELECT window_start, window_s, counts FROM open_window ORDER BY window_start"):
            try:
                counts = json.loads(body)
                if not isinstance(counts, dict):
                    raise ValueError("not an object")
                out.append((int(start), int(length), {str(k): int(v) for k, v in counts.items()}))
            except (ValueError, TypeError):
                bad += 1
        if bad:
            log.warning("open_window_rows_unreadable", rows=bad)
        return out
