"""The PostgreSQL backend (central.store.WindowStore): several collectors, one database.

Each batch is one transaction (READ COMMITTED):

1. lock: a transaction-scoped advisory lock for each device id and each Curve key of the batch,
   taken in one sorted order (so two collectors never deadlock); a device's windows are thus
   decided by one collector at a time, and a device not yet in `devices` is covered too (a row
   lock, SELECT ... FOR UPDATE, could not lock a row that does not exist yet);
2. read, under the locks, what the rules need: the batch's devices (and the devices its keys are
   bound to) and their epochs that the batch names plus each current one;
3. decide every window with the shared rules (central.sequencing), as the SQLite store does;
4. write: new devices and epochs, the windows in one INSERT ... SELECT FROM unnest(...)
   ON CONFLICT DO NOTHING (the primary key (device, epoch, seq) makes it idempotent even without
   the rules; no conflict target, so a table partitioned by month works unchanged), each epoch's
   last seq, and the roll-up's (device, hour) marks (central.rollups);
5. commit; only then does the collector send the acks.

Any database error rolls the batch back (StoreFailed: nothing answered, the devices resend); a
broken connection is reopened at the next batch. A collector killed mid-batch commits nothing
of it, and its devices' resends to another collector are decided against what was committed.
The running totals of a PostgreSQL collector count what this process stored since it started.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
import structlog

from central.errors import CollectorError
from central.pg_schema import migrate
from central.sequencing import ROW, Book, Incoming, Outcome, decide_all, last_marks
from central.store import StoredState, StoreFailed
from wire.telemetry import COUNT_FIELDS

log = structlog.get_logger(__name__)

_TYPES = {"device": "text", "gate": "text", "epsilon": "float8", "received_at": "float8",
          "epoch": "int8", "seq": "int8", "window_start": "int8"}
_COL_TYPES = [_TYPES.get(c, "int4") for c in ROW]
# arrays go as binary parameters (%b): about 3x faster than text arrays (measured, issue 18)
INSERT_WINDOWS = (
    f"INSERT INTO windows ({', '.join(ROW)}) SELECT * FROM unnest("
    + ", ".join(f"%b::{t}[]" for t in _COL_TYPES)
    + ") ON CONFLICT DO NOTHING")  # no target: also a table partitioned by month, whose key
# must hold window_start (docs/rooms/central.md); `windows` has no other unique constraint
_FLOATS = [i for i, t in enumerate(_COL_TYPES) if t == "float8"]
_LOCK = ("SELECT count(pg_advisory_xact_lock(id)) FROM "
         "(SELECT id FROM unnest(%b::int8[]) AS t(id) ORDER BY id) AS s")
_MARK_LAST = ("UPDATE epochs e SET last_seq = m.s FROM unnest(%b::int8[], %b::text[], "
              "%b::int8[]) AS m(s, d, ep) WHERE e.device = m.d AND e.epoch = m.ep")
_MARK_DIRTY = ("INSERT INTO rollup_dirty (device, hour) SELECT DISTINCT d, h - h %% 3600 "
               "FROM unnest(%b::text[], %b::int8[]) AS t(d, h) ON CONFLICT DO NOTHING")


def columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    """Window rows (`ROW` order) as one list per column, the float columns as floats (a JSON
    epsilon of 1 is an int: a binary array takes one type)."""
    cols = [list(col) for col in zip(*rows, strict=True)]
    for i in _FLOATS:
        cols[i] = [None if v is None else float(v) for v in cols[i]]
    return cols


def lock_id(kind: str, name: str) -> int:
    """A signed 64-bit advisory lock id for a device ("d") or key ("k")."""
    digest = hashlib.blake2b(f"{kind}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def connect(dsn: str) -> psycopg.Connection[Any]:
    """A connection to `dsn` (CollectorError saying what to give when it fails)."""
    try:
        return psycopg.connect(dsn, connect_timeout=10, autocommit=True)  # transaction() blocks
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CollectorError(f"cannot connect to the PostgreSQL database ({first[:200]}): give "
                             "--db postgresql://USER@HOST/DATABASE of a running server") from None


class PostgresStore:
    """See the module docstring."""

    backend = "postgres"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg.Connection[Any] | None = connect(dsn)
        try:
            migrate(self.conn)
            row = self.conn.execute("SELECT count(*) FROM devices").fetchone()
        except psycopg.Error as exc:
            self.conn.close()
            raise CollectorError(f"cannot use the PostgreSQL database ({str(exc)[:200]}): "
                                 "give a database this collector may create tables in") from None
        self._devices = int(row[0]) if row else 0

    def initial(self) -> StoredState:
        return StoredState({}, {}, 0, 0, dict.fromkeys(COUNT_FIELDS, 0))

    def device_count(self) -> int:
        return self._devices

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed or self.conn.broken:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            try:
                self.conn = connect(self.dsn)
            except CollectorError as exc:
                raise StoreFailed(f"reconnecting: {exc}") from None
            log.info("telemetry_store_reconnected")
        return self.conn

    def apply(self, windows: list[Incoming], now: float) -> list[Outcome]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                book = self._locked_book(cur, windows)
                writes: list[tuple[Any, ...]] = []
                outcomes = decide_all(book, windows, writes, now)
                new = self._write(cur, writes)
        except psycopg.Error as exc:
            raise StoreFailed(f"{type(exc).__name__}: {str(exc)[:160]}") from None
        self._devices += new
        return outcomes

    def _locked_book(self, cur: psycopg.Cursor[Any], windows: list[Incoming]) -> Book:
        """Lock the batch's devices and keys; read their state as committed now."""
        devices = sorted({w.device for w in windows})
        keys = sorted({w.key for w in windows})
        ids = sorted({lock_id("d", d) for d in devices} | {lock_id("k", k) for k in keys})
        cur.execute(_LOCK, (ids,))
        cur.execute("SELECT device, public_key, epoch FROM devices "
                    "WHERE device = ANY(%b) OR public_key = ANY(%b)", (devices, keys))
        rows = {d: (k, e) for d, k, e in cur.fetchall()}
        pairs = {(w.device, w.header["epoch"]) for w in windows if w.device in rows}
        pairs |= {(d, e) for d, (_, e) in rows.items()}
        names, numbers = [p[0] for p in pairs], [p[1] for p in pairs]
        cur.execute("SELECT e.device, e.epoch, e.last_seq FROM epochs e JOIN "
                    "unnest(%b::text[], %b::int8[]) AS q(device, epoch) "
                    "USING (device, epoch)", (names, numbers))
        epochs: dict[str, dict[int, int]] = {}
        for d, e, s in cur.fetchall():
            epochs.setdefault(d, {})[e] = s
        return Book.of(rows, epochs)

    def _write(self, cur: psycopg.Cursor[Any], writes: list[tuple[Any, ...]]) -> int:
        """Apply `writes` (central.sequencing's list) in order; how many devices are new."""
        new: set[str] = set()
        started: set[str] = set()  # new devices whose first epoch row is written
        rows: list[tuple[Any, ...]] = []
        for w in writes:
            if w[0] == "new":
                cur.execute("INSERT INTO devices (device, public_key, epoch, first_seen) "
                            "VALUES (%s, %s, %s, extract(epoch FROM now()))", w[1:])
                new.add(w[1])
            elif w[0] == "epoch":
                _, device, epoch, at = w
                if device in new and device not in started:  # nothing to supersede yet
                    started.add(device)
                else:
                    cur.execute("UPDATE epochs SET superseded_at = %s WHERE device = %s AND "
                                "superseded_at IS NULL", (at, device))
                    cur.execute("UPDATE devices SET epoch = %s WHERE device = %s",
                                (epoch, device))
                cur.execute("INSERT INTO epochs (device, epoch, last_seq, first_seen) "
                            "VALUES (%s, %s, 0, %s)", (device, epoch, at))
            else:
                rows.append(w[1])
        if rows:
            cur.execute(INSERT_WINDOWS, columns(rows))
            marks = last_marks(writes)
            cur.execute(_MARK_LAST, [list(col) for col in zip(*marks, strict=True)])
            cur.execute(_MARK_DIRTY, ([r[0] for r in rows], [r[4] for r in rows]))
        return len(new)
