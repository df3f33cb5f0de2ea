"""Benchmark of central's hourly and daily roll-ups (issue 18, item 4) on generated windows.

`--gates` gates x `--days` days of 5-minute windows (1,000 x 365 is one year of a 1,000-gate
fleet: 105 million windows) are written into a throwaway PostgreSQL cluster (central.pg_cluster,
fsync on) a day a transaction, in time order, as collectors would store them (without their
roll-up marks: as if the refresh had kept up). Then, timed:
- the full rebuild of both roll-ups (`python -m central rollup --rebuild`: a day at a time);
- the refresh after one new hour of windows from every gate, marked as a collector marks them
  (what a timer running `python -m central rollup` every hour pays), and after one new day
  (a refresh run once a day);
- one fleet day read from `windows_daily`, beside the peer baseline, the same figures computed
  from the raw windows in the same run;
- the tables' sizes on disk.
Figures scale to a year linearly in the days generated; with `--days 365` nothing is
extrapolated. Run: .venv/bin/python bench/rollups.py [--gates 1000] [--days 7] [--json]
(`bench/telemetry.py --backend postgres` runs it too, on a 7-day slice).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from table import print_table  # noqa: E402

from wire.telemetry import COUNT_FIELDS  # noqa: E402

BASE_T = 1_800_000_000
PER_DAY = 288
_COUNTS = ", ".join(
    "NULL" if f == "faults" else
    f"CASE WHEN (g + s + {i}) %% 11 = 0 THEN NULL ELSE 5 + (g * s + {i}) %% 40 END"
    for i, f in enumerate(COUNT_FIELDS))
GENERATE = (f"INSERT INTO windows (device, epoch, seq, gate, window_start, window_s, k, "
            f"epsilon, received_at, {', '.join(COUNT_FIELDS)}) "
            f"SELECT 'gate-' || lpad(g::text, 5, '0'), 1, s, 'G' || g, "
            f"{BASE_T} + 300 * (s - 1), 300, 5, NULL, extract(epoch FROM now()), {_COUNTS} "
            f"FROM generate_series(1, %s::int) g, generate_series(%s::int, %s::int) s")
# the marks a collector writes beside those windows (from the same series: no scan of windows)
MARK = ("INSERT INTO rollup_dirty SELECT DISTINCT 'gate-' || lpad(g::text, 5, '0'), "
        f"({BASE_T} + 300 * (s - 1)) / 3600 * 3600 FROM generate_series(1, %s::int) g, "
        "generate_series(%s::int, %s::int) s ON CONFLICT DO NOTHING")
DEVICES = ("INSERT INTO devices (device, public_key, epoch, first_seen) SELECT "
           "'gate-' || lpad(g::text, 5, '0'), 'key-' || g, 1, 0 FROM generate_series(1, %s) g")
FLEET_DAY_ROLLUP = ("SELECT gate, sum(matched), sum(passages) FROM windows_daily WHERE day = %s "
                    "GROUP BY gate")
FLEET_DAY_RAW = ("SELECT gate, sum(matched), sum(passages) FROM windows WHERE window_start >= %s "
                 "AND window_start < %s GROUP BY gate")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _timed_ms(conn, sql: str, params: tuple) -> float:
    t = time.perf_counter()
    conn.execute(sql, params).fetchall()
    return (time.perf_counter() - t) * 1000


def _add_and_refresh(conn, gates: int, first: int, n: int) -> tuple[float, int, int]:
    """Store `n` more windows per gate from seq `first`, marked; refresh; (s, hours, days)."""
    from central.rollups import refresh

    conn.execute(GENERATE, (gates, first, first + n - 1))
    conn.execute(MARK, (gates, first, first + n - 1))
    conn.commit()
    done = refresh(conn)
    return done.seconds, done.device_hours, done.device_days


def measure_rollups(dsn: str, gates: int, days: int, progress: bool = False) -> dict:
    """Generate, rebuild, refresh, size and query (see the module docstring); the figures."""
    import psycopg

    from central.pg_schema import migrate
    from central.rollups import rebuild

    out: dict = {"gates": gates, "days": days, "rows": gates * days * PER_DAY,
                 "year_factor": 365 / days}
    with psycopg.connect(dsn) as conn:
        migrate(conn)
        out["server_version"] = conn.info.server_version // 10000
        conn.execute(DEVICES, (gates,))
        conn.commit()
        t = time.perf_counter()
        for day in range(days):  # in time order, a day a transaction, as collectors commit
            conn.execute(GENERATE, (gates, day * PER_DAY + 1, (day + 1) * PER_DAY))
            conn.commit()
            if progress and (day + 1) % 10 == 0:
                _say(f"generated day {day + 1}/{days} ({time.perf_counter() - t:.0f} s)")
        out["generate_s"] = time.perf_counter() - t
        conn.execute("ANALYZE windows")
        conn.commit()

        def rebuilt(done: int, total: int) -> None:
            if progress and done % 10 == 0:
                _say(f"rebuilt day {done}/{total} ({time.perf_counter() - t:.0f} s)")

        t = time.perf_counter()
        full = rebuild(conn, rebuilt)
        out["rebuild_s"], out["rebuild_device_hours"] = full.seconds, full.device_hours
        first = days * PER_DAY + 1  # one more hour for every gate, then one more day
        out["refresh_hour_s"], out["refresh_hour_device_hours"], _ = _add_and_refresh(
            conn, gates, first, 12)
        out["refresh_day_s"], out["refresh_day_device_hours"], _ = _add_and_refresh(
            conn, gates, first + 12, PER_DAY)

        def mb(sql: str) -> float:
            return float(conn.execute(sql).fetchone()[0]) / 2**20

        out["windows_mb"] = mb("SELECT pg_total_relation_size('windows')")
        out["rollups_mb"] = mb("SELECT pg_total_relation_size('windows_hourly') + "
                               "pg_total_relation_size('windows_daily')")
        day = BASE_T - BASE_T % 86400 + 86400
        out["query_daily_ms"] = _timed_ms(conn, FLEET_DAY_ROLLUP, (day,))
        out["query_raw_ms"] = _timed_ms(conn, FLEET_DAY_RAW, (day, day + 86400))
    f = out["year_factor"]
    out |= {"year_rows": int(out["rows"] * f), "year_rebuild_s": out["rebuild_s"] * f,
            "year_windows_gb": out["windows_mb"] * f / 1024,
            "year_rollups_gb": out["rollups_mb"] * f / 1024}
    return out


def print_rollup(r: dict) -> None:
    year = "measured, nothing extrapolated" if r["days"] == 365 else \
        f"year = x{r['year_factor']:.1f}, linear extrapolation"
    print(f"roll-ups: {r['gates']} gates x {r['days']} days of 5-minute windows = {r['rows']} "
          f"rows, generated in {r['generate_s']:.0f} s ({year})")
    print_table((("step", "<40s"), ("measured", ">12s"), ("one year", ">14s")), (
        ("full rebuild, hourly + daily", f"{r['rebuild_s']:.1f} s", f"{r['year_rebuild_s']:.0f} s"),
        ("refresh after one new hour, all gates", f"{r['refresh_hour_s']:.2f} s", "per hour"),
        ("refresh after one new day, all gates", f"{r['refresh_day_s']:.2f} s", "per day"),
        ("windows table + indexes", f"{r['windows_mb']:.0f} MB",
         f"{r['year_windows_gb']:.1f} GB"),
        ("hourly + daily tables", f"{r['rollups_mb']:.0f} MB", f"{r['year_rollups_gb']:.1f} GB"),
        ("fleet day from windows_daily", f"{r['query_daily_ms']:.1f} ms", ""),
        ("peer: the same from raw windows", f"{r['query_raw_ms']:.1f} ms", "")), rule=False)

def _count(most: int):
    def parse(text: str) -> int:
        if not text.isdigit() or not 1 <= int(text) <= most:
            raise argparse.ArgumentTypeError(f"a whole number from 1 to {most}, not {text!r}")
        return int(text)
    return parse


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default, most in (("--gates", 1000, 100_000), ("--days", 7, 3660)):
        ap.add_argument(flag, type=_count(most), default=default, metavar=f"1..{most}")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from central.pg_cluster import PgCluster

    with PgCluster() as pg:
        r = measure_rollups(pg.create_database("rollup"), args.gates, args.days, progress=True)
    print(f"roll-up bench on {platform.machine()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; PostgreSQL "
          f"{r['server_version']} (fsync on)")
    print_rollup(r)
    if args.json:
        print(json.dumps({"backend": "postgres", "rollup": r}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
