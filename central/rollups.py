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
offline for a week). `rebuild(conn)` marks every device-hour, then refreshes.

Run: `python -m central rollup --db postgresql://... [--rebuild]` (from cron or a timer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from wire.telemetry import COUNT_FIELDS

_NULLS = " + ".join(f"({f} IS NULL)::int" for f in COUNT_FIELDS)
_COLS = ", ".join(COUNT_FIELDS)
_HOURLY_AGG = ", ".join(f"max({f})" if f == "peak_in_view" else f"sum({f})"
                        for f in COUNT_FIELDS)
_DAILY_AGG = _HOURLY_AGG

TAKE_MARKS = """
CREATE TEMP TABLE IF NOT EXISTS rollup_take (device text, hour bigint) ON COMMIT DELETE ROWS;
WITH taken AS (DELETE FROM rollup_dirty RETURNING device, hour)
INSERT INTO rollup_take SELECT device, hour FROM taken;
"""
REFRESH_HOURS = f"""
DELETE FROM windows_hourly h USING rollup_take t WHERE h.device = t.device AND h.hour = t.hour;
INSERT INTO windows_hourly (device, gate, hour, windows, suppressed_cells, {_COLS})
SELECT w.device, w.gate, t.hour, count(*), sum({_NULLS}), {_HOURLY_AGG}
FROM rollup_take t JOIN windows w
  ON w.device = t.device AND w.window_start >= t.hour AND w.window_start < t.hour + 3600
GROUP BY w.device, w.gate, t.hour;
"""
REFRESH_DAYS = f"""
CREATE TEMP TABLE IF NOT EXISTS rollup_days (device text, day bigint) ON COMMIT DELETE ROWS;
INSERT INTO rollup_days SELECT DISTINCT device, hour - hour % 86400 FROM rollup_take;
DELETE FROM windows_daily d USING rollup_days t WHERE d.device = t.device AND d.day = t.day;
INSERT INTO windows_daily (device, gate, day, windows, suppressed_cells, {_COLS})
SELECT h.device, h.gate, t.day, sum(h.windows), sum(h.suppressed_cells), {_DAILY_AGG}
FROM rollup_days t JOIN windows_hourly h
  ON h.device = t.device AND h.hour >= t.day AND h.hour < t.day + 86400
GROUP BY h.device, h.gate, t.day;
"""
MARK_ALL = """
INSERT INTO rollup_dirty (device, hour)
SELECT DISTINCT device, window_start - window_start % 3600 FROM windows
ON CONFLICT DO NOTHING
"""


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


def rebuild(conn: Any) -> Refreshed:
    """Mark every device-hour that has windows, then `refresh`."""
    with conn.transaction():
        conn.execute(MARK_ALL)
    return refresh(conn)
