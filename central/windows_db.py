"""The collector's SQLite file (the embedded backend, `SqliteStore`): one row per device (its
key, its current epoch and the last seq stored in it), one per (device, epoch) ever seen, and
one per stored window (the counts/1 body's fields, one column per count), keyed by (device,
epoch, seq).

Opened in WAL mode with `synchronous=NORMAL`; `commit` writes a batch in one transaction (new
devices, new epochs, windows, each epoch's last seq), so an ack is only sent for what is on
disk. A file made before epochs (uplink/1: windows keyed by (device, seq)) is upgraded in place
when opened: its windows and each device's last seq become epoch 0, the epoch that devices give
the windows they queued before their own upgrade.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from central.errors import CollectorError
from central.sequencing import ROW, Book, Incoming, Outcome, decide_all, last_marks
from central.store import StoredState, StoreFailed
from wire.telemetry import COUNT_FIELDS

_COLS = ", ".join(f"{name} INTEGER" for name in COUNT_FIELDS)
_WINDOWS = f"""
CREATE TABLE IF NOT EXISTS windows (
    device TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    gate TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_s INTEGER NOT NULL,
    k INTEGER NOT NULL,
    epsilon REAL,
    received_at REAL NOT NULL,
    {_COLS},
    PRIMARY KEY (device, epoch, seq)
) WITHOUT ROWID
"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL,          -- the last seq stored in the current epoch
    epoch INTEGER NOT NULL DEFAULT 0    -- the current (latest) epoch
);
CREATE TABLE IF NOT EXISTS epochs (
    device TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    superseded_at REAL,                 -- when a newer epoch of the device was first stored
    PRIMARY KEY (device, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dashboard_users (  -- the fleet dashboard's log-ins (central.users)
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
    password_hash TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""
_ROW = ROW
_INSERT = (f"INSERT INTO windows ({', '.join(_ROW)}) VALUES ({', '.join('?' * len(_ROW))})")


def open_db(path: Path) -> sqlite3.Connection:
    """The collector's database (created when new), or CollectorError saying what to give."""
    try:
        # built in one thread, served in another (one serve() at a time, see Collector.serve)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        had = {row[1] for row in db.execute("PRAGMA table_info(windows)")}
        if had:  # a count field added since the file was made (the old windows could not
            for name in COUNT_FIELDS:  # have counted it: 0)
                if name not in had:
                    db.execute(f"ALTER TABLE windows ADD COLUMN {name} INTEGER DEFAULT 0")
        db.executescript(_SCHEMA)
        if had and "epoch" not in had:
            _upgrade_from_uplink1(db)
        db.execute(_WINDOWS)
        load_state(db)
    except sqlite3.Error as exc:
        raise CollectorError(f"cannot use database {path} ({exc}): give a writable "
                             "SQLite file made by this collector") from None
    return db


def _upgrade_from_uplink1(db: sqlite3.Connection) -> None:
    """Windows keyed by (device, seq) -> (device, 0, seq); device state -> epoch 0."""
    db.execute("BEGIN")
    try:
        if "epoch" not in {row[1] for row in db.execute("PRAGMA table_info(devices)")}:
            db.execute("ALTER TABLE devices ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")
        db.execute("ALTER TABLE windows RENAME TO windows_uplink1")
        db.execute(_WINDOWS)
        cols = [c for c in _ROW if c != "epoch"]
        db.execute(f"INSERT INTO windows (epoch, {', '.join(cols)}) "
                   f"SELECT 0, {', '.join(cols)} FROM windows_uplink1")
        db.execute("DROP TABLE windows_uplink1")
        db.execute("INSERT OR IGNORE INTO epochs (device, epoch, last_seq, first_seen) "
                   "SELECT device, 0, last_seq, ? FROM devices", (time.time(),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def load_state(db: sqlite3.Connection) -> StoredState:
    devices = {d: (k, e) for d, k, e in
               db.execute("SELECT device, public_key, epoch FROM devices")}
    epochs: dict[str, dict[int, int]] = {}
    for d, e, s in db.execute("SELECT device, epoch, last_seq FROM epochs"):
        epochs.setdefault(d, {})[e] = s
    sums = ", ".join(f"COALESCE(SUM({f}), 0)" for f in COUNT_FIELDS)
    nulls = " + ".join(f"COALESCE(SUM({f} IS NULL), 0)" for f in COUNT_FIELDS)
    row = db.execute(f"SELECT COUNT(*), {nulls}, {sums} FROM windows").fetchone()
    return StoredState(devices, epochs, row[0], row[1],
                       dict(zip(COUNT_FIELDS, row[2:], strict=True)))


def commit(db: sqlite3.Connection, writes: list[tuple[Any, ...]]) -> None:
    """One transaction, in order: ("new", device, key, epoch) devices, ("epoch", device, epoch,
    now) a device's new current epoch, ("win", row) windows (row in `_ROW` order)."""
    db.execute("BEGIN")
    try:
        rows = [w[1] for w in writes if w[0] == "win"]
        for w in writes:
            if w[0] == "new":
                db.execute("INSERT INTO devices (device, public_key, last_seq, epoch) "
                           "VALUES (?, ?, 0, ?)", (w[1], w[2], w[3]))
            elif w[0] == "epoch":
                _, device, epoch, now = w
                db.execute("UPDATE epochs SET superseded_at = ? WHERE device = ? AND "
                           "superseded_at IS NULL", (now, device))
                db.execute("INSERT INTO epochs (device, epoch, last_seq, first_seen) "
                           "VALUES (?, ?, 0, ?)", (device, epoch, now))
                db.execute("UPDATE devices SET epoch = ?, last_seq = 0 WHERE device = ?",
                           (epoch, device))
        db.executemany(_INSERT, rows)
        marks = last_marks(writes)
        db.executemany("UPDATE epochs SET last_seq = ? WHERE device = ? AND epoch = ?", marks)
        db.executemany("UPDATE devices SET last_seq = ? WHERE device = ? AND epoch = ?", marks)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SqliteStore:
    """The SQLite backend (central.store.WindowStore): one process owns the file, so the
    device state is kept in memory, and reloaded from the file when a commit fails."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_db(path)
        self._reload()

    def _reload(self) -> None:
        self._state = load_state(self.db)
        self._book = Book.of(self._state.devices, self._state.epochs)

    def initial(self) -> StoredState:
        return self._state

    def apply(self, windows: list[Incoming], now: float) -> list[Outcome]:
        writes: list[tuple[Any, ...]] = []
        outcomes = decide_all(self._book, windows, writes, now)
        if writes:
            try:
                commit(self.db, writes)
            except (sqlite3.Error, ValueError, OverflowError) as exc:
                self._reload()  # forget what was not committed; devices resend
                raise StoreFailed(str(exc)) from None
        return outcomes

    def device_count(self) -> int:
        return len(self._book.devices)

    def close(self) -> None:
        self.db.close()
