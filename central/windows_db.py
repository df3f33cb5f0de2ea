"""The collector's SQLite file: one row per device (its key, its last stored seq) and one per
stored window (the counts/1 body's fields, one column per count).

Opened in WAL mode with `synchronous=NORMAL`; `commit` writes a batch in one transaction (new
devices, windows, each device's last seq), so an ack is only sent for what is on disk.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from central.errors import CollectorError
from wire.telemetry import COUNT_FIELDS

_COLS = ", ".join(f"{name} INTEGER" for name in COUNT_FIELDS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    gate TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_s INTEGER NOT NULL,
    k INTEGER NOT NULL,
    epsilon REAL,
    received_at REAL NOT NULL,
    {_COLS},
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
"""
_INSERT = (f"INSERT INTO windows (device, seq, gate, window_start, window_s, k, epsilon, "
           f"received_at, {', '.join(COUNT_FIELDS)}) VALUES "
           f"({', '.join('?' * (8 + len(COUNT_FIELDS)))})")


@dataclass
class StoredState:
    """What the file holds: device -> (public key, last seq), and the running totals."""

    devices: dict[str, tuple[str, int]]
    stored: int
    suppressed: int
    totals: dict[str, int]


def open_db(path: Path) -> sqlite3.Connection:
    """The collector's database (created when new), or CollectorError saying what to give."""
    try:
        # built in one thread, served in another (one serve() at a time, see Collector.serve)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        have = {row[1] for row in db.execute("PRAGMA table_info(windows)")}
        for name in COUNT_FIELDS:  # a count field added since the file was made (the old
            if name not in have:   # windows could not have counted it: 0)
                db.execute(f"ALTER TABLE windows ADD COLUMN {name} INTEGER DEFAULT 0")
        load_state(db)
    except sqlite3.Error as exc:
        raise CollectorError(f"cannot use database {path} ({exc}): give a writable "
                             "SQLite file made by this collector") from None
    return db


def load_state(db: sqlite3.Connection) -> StoredState:
    devices = {d: (k, s) for d, k, s in
               db.execute("SELECT device, public_key, last_seq FROM devices")}
    sums = ", ".join(f"COALESCE(SUM({f}), 0)" for f in COUNT_FIELDS)
    nulls = " + ".join(f"COALESCE(SUM({f} IS NULL), 0)" for f in COUNT_FIELDS)
    row = db.execute(f"SELECT COUNT(*), {nulls}, {sums} FROM windows").fetchone()
    return StoredState(devices, row[0], row[1], dict(zip(COUNT_FIELDS, row[2:], strict=True)))


def commit(db: sqlite3.Connection, writes: list[tuple]) -> None:
    """One transaction: ("new", device, key) rows and ("win", row) windows, in order."""
    db.execute("BEGIN")
    try:
        rows = [w[1] for w in writes if w[0] == "win"]
        for w in writes:
            if w[0] == "new":
                db.execute("INSERT INTO devices (device, public_key, last_seq) "
                           "VALUES (?, ?, 0)", (w[1], w[2]))
        db.executemany(_INSERT, rows)
        last: dict[str, int] = {}
        for r in rows:
            last[r[0]] = r[1]
        db.executemany("UPDATE devices SET last_seq = ? WHERE device = ?",
                       [(s, d) for d, s in last.items()])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
