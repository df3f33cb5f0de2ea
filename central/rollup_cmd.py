"""`python -m central rollup --db postgresql://... [--rebuild]`: refresh the hourly and daily
roll-ups of what the collectors stored since the last refresh (central.rollups), and print how
many device-hours and device-days were recomputed and how long it took. `--rebuild` goes a day
at a time and says on stderr how far it has got, every ten seconds or so."""

from __future__ import annotations

import argparse
import sys
import time

from central.errors import CollectorError
from central.pg_schema import migrate
from central.pg_store import connect
from central.rollups import rebuild, refresh
from central.store import is_postgres


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True,
                        help="the collectors' database: postgresql://USER@HOST/DATABASE")
    parser.add_argument("--rebuild", action="store_true",
                        help="recompute every device-hour that has windows, not only new ones")


def run(args: argparse.Namespace) -> int:
    if not is_postgres(args.db):
        raise CollectorError("roll-ups are kept in PostgreSQL: give --db postgresql://...")
    with connect(args.db) as conn:
        migrate(conn)
        done = rebuild(conn, _Progress()) if args.rebuild else refresh(conn)
    print(f"rollup device_hours={done.device_hours} device_days={done.device_days} "
          f"seconds={done.seconds:.3f}", flush=True)
    return 0



class _Progress:
    """Prints `rollup rebuilt N/M days` at most every `every_s` seconds, and at the end."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.last >= self.every_s:
            self.last = now
            print(f"rollup rebuilt {done}/{total} days", file=sys.stderr, flush=True)
