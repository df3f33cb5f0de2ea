"""Inspect a consent store read-only: full integrity check and a digest of its contents.

Used by `rotate-key` (the content must be identical under the new key) and by `verify`. Opens
its own read-only SQLCipher connection through edge.consent.opening, so it never changes the
file. The digest covers every table except the audit log (rotation itself appends an audit row);
the audit chain is verified separately by the store. Nothing read here is logged or returned
except counts and the digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edge.consent import opening
from edge.consent.keys import read_key_file

UNDIGESTED = frozenset({"audit"})


@dataclass(frozen=True)
class StoreInspection:
    problems: list[str]
    digest: str
    rows: dict[str, int]


def inspect_store(path: Path, key_file: Path) -> StoreInspection:
    """PRAGMA integrity_check plus a content digest, on a read-only connection."""
    key = read_key_file(key_file)
    conn = opening.connect(Path(path), key, read_only=True)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        problems = [p for p in problems if p != "ok"]
        tables = sorted(r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
        h = hashlib.sha256()
        rows: dict[str, int] = {}
        for table in tables:
            data = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            rows[table] = len(data)
            if table in UNDIGESTED:
                continue
            h.update(table.encode() + b"\0")
            for row in sorted(repr(tuple(r)) for r in data):
                h.update(row.encode() + b"\n")
    except opening.DatabaseError as exc:
        problems, rows = [f"database error: {exc}"], {}
        h = hashlib.sha256(b"unreadable")
    finally:
        conn.close()
    return StoreInspection(problems=problems, digest=h.hexdigest(), rows=rows)
