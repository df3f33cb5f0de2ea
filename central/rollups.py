"""Hourly and daily roll-ups of the PostgreSQL windows, refreshed incrementally.

`windows_hourly` and `windows_daily` (central.pg_schema, migration 2) hold, per (device, gate,
UTC hour or day), how many windows there were, how many count cells were suppressed, the sum of
each published count and the maximum of `peak_in_view` (a peak, not a quantity to add). A window
belongs to the hour its `window_start` falls in.

Incremental: each collector transaction that stores windows also marks their (device, hour) in
`rollup_dirty`. `refresh(conn)` takes the marks (DELETE ... RETURNING, in its own transaction),
recomputes those device-hours from `windows` (index (device, window_start)) and then the days
they fall in from `windows_hourly`, and commits. A window committed while a refresh runs keeps
its mark (it was written in the same transaction as the window), so the next refresh picks it
up: nothing is missed, and a recompute is exact however late a window arrives (a device that was
offline for a week).

`rebuild(conn)` recomputes everything a UTC day at a time, in time order, each day in its own
transaction: it drops the day's marks, then (a later statement, so a later snapshot) groups the
day's windows straight into hours (found through migration 5's BRIN index on window_start, which
fits windows that arrive roughly in time order) and the hours into the day. Its cost grows with
the days stored, not faster; a rebuild stopped half-way leaves whole days done and can be run
again. A window committed for a day already rebuilt keeps its mark for the next refresh.

Run: `python -m central rollup --db postgresql://... [--rebuild]` (from cron or a timer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wire.telemetry import COUNT_FIELDS

_NULLS = " + ".join(f"({f} IS NULL)::int" for f in COUNT_FIELDS)
_COLS = ", ".join(COUNT_FIELDS)
_AGG = [f"max({f})" if f == "peak_in_view" else f"sum({f})" for f in COUNT_FIELDS]
_HOURLY_AGG = ", ".join(_AGG)
_AGG_AS = ", ".join(f"{agg} AS {f}" for agg, f in zip(_AGG, COUNT_FIELDS, strict=True))
_OUT = ", ".join(f"a.{f}" for f in COUNT_FIELDS)

TAKE_MARKS = """
CREATE TEMP TABLE IF NOT EXISTS rollup_take (device text, hour bigint) ON COMMIT DELETE ROWS;
WITH taken AS (DELETE FROM rollup_dirty RETURNING device, hour)
INSERT INTO rollup_take SELECT device, hour FROM taken;
"""
# Each marked device-hour is recomputed by its own index range scan (a LATERAL subquery with
# GROUP BY cannot be flattened into a join): as a plain join, the planner cannot tell how few
# windows an hour holds and, on a year of windows, read all 105M of them for 1,000 marks.
# ANALYZE gives it the marks' real count.
REFRESH_HOURS = f"""
ANALYZE rollup_take;
DELETE FROM windows_hourly h USING rollup_take t WHERE h.device = t.device AND h.hour = t.hour;
INSERT INTO windows_hourly (device, gate, hour, windows, suppressed_cells, {_COLS})
SELECT t.device, a.gate, t.hour, a.n, a.nulls, {_OUT}
FROM rollup_take t CROSS JOIN LATERAL (
  SELECT w.gate, count(*) AS n, sum({_NULLS}) AS nulls, {_AGG_AS} FROM windows w
  WHERE w.device = t.device AND w.window_start >= t.hour AND w.window_start < t.hour + 3600
  GROUP BY w.gate) a;
"""
REFRESH_DAYS = f"""
CREATE TEMP TABLE IF NOT EXISTS rollup_days (device text, day bigint) ON COMMIT DELETE ROWS;
INSERT INTO rollup_days SELECT DISTINCT device, hour - hour % 86400 FROM rollup_take;
ANALYZE rollup_days;
DELETE FROM windows_daily d USING rollup_days t WHERE d.device = t.device AND d.day = t.day;
INSERT INTO windows_daily (device, gate, day, windows, suppressed_cells, {_COLS})
SELECT t.device, a.gate, t.day, a.n, a.nulls, {_OUT}
FROM rollup_days t CROSS JOIN LATERAL (
  SELECT h.gate, sum(h.windows) AS n, sum(h.suppressed_cells) AS nulls, {_AGG_AS}
  FROM windows_hourly h WHERE h.device = t.device AND h.hour >= t.day AND h.hour < t.day + 86400
  GROUP BY h.gate) a;
"""
DAY = 86400
# the first and last window_start, per device through (device, window_start): no full scan
SPAN = """
SELECT min(f.first), max(l.last) FROM devices d,
  LATERAL (SELECT window_start AS first FROM windows w WHERE w.device = d.device
           ORDER BY window_start LIMIT 1) f,
  LATERAL (SELECT window_start AS last FROM windows w WHERE w.device = d.device
           ORDER BY window_start DESC LIMIT 1) l
"""
# block ranges written since autovacuum last summarised them would be read for every day
SUMMARISE = """
SELECT count(brin_summarize_new_values(i.indexrelid)) FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
WHERE a.amname = 'brin' AND c.relkind = 'i' AND (i.indrelid = 'windows'::regclass
      OR i.indrelid IN (SELECT relid FROM pg_partition_tree('windows')))
"""
# one statement each (psycopg sends parameters with one statement at a time)
REBUILD_DAY = (
    "SET LOCAL work_mem = '64MB'",  # a day's 24,000 device-hours grouped in memory
    "SET LOCAL jit = off",
    f"DELETE FROM rollup_dirty WHERE hour >= %(day)s AND hour < %(day)s + {DAY}",
    f"DELETE FROM windows_hourly WHERE hour >= %(day)s AND hour < %(day)s + {DAY}",
    "DELETE FROM windows_daily WHERE day = %(day)s",
    f"""INSERT INTO windows_hourly (device, gate, hour, windows, suppressed_cells, {_COLS})
SELECT device, gate, window_start - window_start %% 3600, count(*), sum({_NULLS}),
       {_HOURLY_AGG}
FROM windows WHERE window_start >= %(day)s AND window_start < %(day)s + {DAY}
GROUP BY 1, 2, 3""",
    f"""INSERT INTO windows_daily (device, gate, day, windows, suppressed_cells, {_COLS})
SELECT device, gate, %(day)s, sum(windows), sum(suppressed_cells), {_HOURLY_AGG}
FROM windows_hourly WHERE hour >= %(day)s AND hour < %(day)s + {DAY}
GROUP BY 1, 2""",
)


@dataclass(frozen=True)
class Refreshed:
    device_hours: int
    device_days: int
    seconds: float


def refresh(conn: Any) -> Refreshed:
    """Recompute every marked device-hour and its day, in one transaction (psycopg conn)."""
    t0 = time.perf_counter()
    with conn.transaction():
        conn.execute(TAKE_MARKS)
        hours = int(conn.execute("SELECT count(*) FROM rollup_take").fetchone()[0])
        days = 0
        if hours:
            conn.execute(REFRESH_HOURS)
            conn.execute(REFRESH_DAYS)
            days = int(conn.execute("SELECT count(*) FROM rollup_days").fetchone()[0])
    return Refreshed(hours, days, time.perf_counter() - t0)


def rebuild(conn: Any, progress: Callable[[int, int], None] | None = None) -> Refreshed:
    """Recompute every day that has windows, oldest first, a day a transaction; then `refresh`
    what was marked meanwhile. `progress(done, total)` is called after each day."""
    t0 = time.perf_counter()
    conn.execute(SUMMARISE)
    first, last = conn.execute(SPAN).fetchone()
    conn.commit()
    hours = days = 0
    if first is not None:
        start = int(first) - int(first) % DAY
        total = (int(last) - start) // DAY + 1
        for i in range(total):
            day = {"day": start + i * DAY}
            with conn.transaction():
                *_, h, d = [conn.execute(statement, day).rowcount for statement in REBUILD_DAY]
            hours, days = hours + h, days + d  # the rows the two INSERTs wrote
            if progress is not None:
                progress(i + 1, total)
    late = refresh(conn)
    return Refreshed(hours + late.device_hours, days + late.device_days,
                     time.perf_counter() - t0)
