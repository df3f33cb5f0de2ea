"""The growth path docs/rooms/central.md describes, tried on a throwaway cluster: `windows`
turned into a table partitioned by month (`PARTITION BY RANGE (window_start)`, primary key
`(device, epoch, seq, window_start)`) keeps taking the collectors' batches unchanged (re-sent
windows stored once, windows landing in the month they belong to), the roll-ups and the
dashboard's reads work on it, and retention is `DETACH PARTITION` + `DROP TABLE`.
"""

from __future__ import annotations

import datetime as dt
import time

import psycopg
import pytest

from central.db_access import central
from central.fleet_data import fleet, series
from central.pg_store import INSERT_WINDOWS, PostgresStore, columns
from central.rollups import rebuild, refresh
from central.sequencing import ROW, Incoming
from wire.telemetry import COUNT_FIELDS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FEB = int(dt.datetime(2027, 2, 1, tzinfo=dt.UTC).timestamp())
MONTHS = [(f"windows_{y}_{m:02d}", int(dt.datetime(y, m, 1, tzinfo=dt.UTC).timestamp()),
           int(dt.datetime(y + m // 12, m % 12 + 1, 1, tzinfo=dt.UTC).timestamp()))
          for y, m in ((2027, 1), (2027, 2))]


def partition_by_month(dsn: str) -> None:
    """The migration the docs describe, for a database whose windows fit the two months."""
    parts = "\n".join(f"CREATE TABLE {name} PARTITION OF windows FOR VALUES FROM ({lo}) TO ({hi});"
                      for name, lo, hi in MONTHS)
    with psycopg.connect(dsn) as conn:
        conn.execute(f"""
ALTER TABLE windows RENAME TO windows_unpartitioned;
ALTER INDEX windows_device_start RENAME TO windows_unpartitioned_device_start;
ALTER INDEX windows_start_brin RENAME TO windows_unpartitioned_start_brin;
CREATE TABLE windows (LIKE windows_unpartitioned INCLUDING DEFAULTS)
    PARTITION BY RANGE (window_start);
ALTER TABLE windows ADD PRIMARY KEY (device, epoch, seq, window_start);
CREATE INDEX windows_device_start ON windows (device, window_start);
CREATE INDEX windows_start_brin ON windows USING brin (window_start)
    WITH (autosummarize = on);
{parts}
INSERT INTO windows SELECT * FROM windows_unpartitioned;
DROP TABLE windows_unpartitioned;
""")


def _inc(seq: int) -> Incoming:
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"temperature_screened": 10, "faults": None}
    return Incoming("K1", {"type": "window", "epoch": 1, "seq": seq, "prev": seq - 1 or None},
                    {"device": "d1", "gate": "LHR.B12", "window_start": FEB - 3600 + 300 * seq,
                     "window_s": 300, "k": 5, "epsilon": None, "counts": counts})


def test_a_table_partitioned_by_month_takes_the_collectors_batches_unchanged(dsn):
    store = PostgresStore(dsn)
    try:
        store.apply([_inc(s) for s in range(1, 7)], time.time())  # before the change
        partition_by_month(dsn)
        store.apply([_inc(s) for s in range(4, 25)], time.time())  # 4..6 re-sent
        assert store.conn is not None
        with store.conn.transaction(), store.conn.cursor() as cur:  # the constraint itself
            row = cur.execute(f"SELECT {', '.join(ROW)} FROM windows WHERE seq = 20").fetchone()
            assert cur.execute(INSERT_WINDOWS, columns([row])).rowcount == 0
        refresh(store.conn)
        hourly = "SELECT device, hour, windows, temperature_screened FROM windows_hourly ORDER BY 2"
        before = store.conn.execute(hourly).fetchall()
        store.conn.commit()
        assert rebuild(store.conn).device_hours == 3  # a day at a time over the partitions
        assert store.conn.execute(hourly).fetchall() == before
    finally:
        store.close()
    with psycopg.connect(dsn) as conn:
        per_month = dict(conn.execute("SELECT tableoid::regclass::text, count(*) FROM windows "
                                      "GROUP BY 1").fetchall())
        assert per_month == {"windows_2027_01": 11, "windows_2027_02": 13}
        assert conn.execute("SELECT count(DISTINCT seq), count(*) FROM windows").fetchone() == (
            24, 24)
    with central(dsn) as handle:
        hours = series(handle, 48)
        assert sum(hours["windows"]) == 24 and len(hours["hours"]) == 3
        assert fleet(handle, "2027-02-01")["total"]["windows"] == 13
    with psycopg.connect(dsn) as conn:  # retention: a month goes in two statements
        conn.execute("ALTER TABLE windows DETACH PARTITION windows_2027_01")
        conn.execute("DROP TABLE windows_2027_01")
        assert conn.execute("SELECT count(*) FROM windows").fetchone() == (13,)
