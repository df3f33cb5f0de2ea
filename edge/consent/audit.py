"""The hash chain of the audit log: each row's HMAC covers its fields and the previous hash.

Keyed with a subkey of the device secret, so rows cannot be re-chained without it. Rows carry
event names, actors, ids and reasons only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

from edge.consent.errors import AuditChainError
from edge.consent.records import bounded_text

if TYPE_CHECKING:
    from edge.consent.database import StoreDatabase
    from foundation.clock import Clock

GENESIS = b"\x00" * 32


def row_hash(key: bytes, prev_hash: bytes, seq: int, at: float, event: str, actor: str,
             subject: str | None, reason: str | None) -> bytes:
    body = json.dumps([seq, repr(float(at)), event, actor, subject, reason],
                      separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hmac.new(key, prev_hash + body, hashlib.sha256).digest()


class AuditLog:
    """The hash-chained audit table of one store database."""

    def __init__(self, db: StoreDatabase, key: bytes, clock: Clock) -> None:
        self._db = db
        self._key = key
        self._clock = clock

    def record_in(self, conn: Any, event: str, actor: str, subject: str | None,
                  reason: str | None) -> None:
        """Append a row inside the caller's transaction (so it commits with the change)."""
        row = conn.execute("SELECT seq, row_hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = bytes(row[1]) if row else GENESIS
        seq = next_seq(conn, "audit")
        at = self._clock.now()
        digest = row_hash(self._key, prev, seq, at, event, actor, subject, reason)
        conn.execute("INSERT INTO audit (seq, at, event, actor, subject, reason, prev_hash, "
                     "row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, at, event, actor, subject, reason, prev, digest))

    def record(self, event: str, actor: str, subject: str | None = None,
               reason: str | None = None) -> None:
        """Append a row in its own transaction (ids and reasons only: never names, references
        or images)."""
        event = bounded_text(event, "audit event", 64)
        actor = bounded_text(actor, "audit actor", 64)
        with self._db.write() as conn:
            self.record_in(conn, event, actor, subject, reason)

    def verify(self) -> int:
        """Recompute the chain; return the rows checked or raise AuditChainError at the first
        row that was edited, removed or reordered."""
        prev, expected_seq, checked = GENESIS, None, 0
        for seq, at, event, actor, subject, reason, prev_hash, digest in self._db.read(
                "SELECT seq, at, event, actor, subject, reason, prev_hash, row_hash FROM audit "
                "ORDER BY seq"):
            if expected_seq is not None and seq != expected_seq:
                raise AuditChainError(f"audit rows before #{seq} are missing: the log was cut; "
                                      "preserve the store for investigation")
            if bytes(prev_hash) != prev or not hmac.compare_digest(
                    bytes(digest),
                    row_hash(self._key, prev, seq, at, event, actor, subject, reason)):
                raise AuditChainError(f"audit row #{seq} does not match the chain: it was edited "
                                      "or its predecessor removed; preserve the store for "
                                      "investigation")
            prev, expected_seq, checked = bytes(digest), seq + 1, checked + 1
        return checked


def next_seq(conn: Any, table: str) -> int:
    """The id the next AUTOINCREMENT row of `table` will get."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return (int(row[0]) if row else 0) + 1
