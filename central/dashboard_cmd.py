"""`python -m central dashboard --db postgresql://... [--bind 127.0.0.1:8090]`: serve the fleet
dashboard (central.dashboard), read-only, from the roll-ups; with `--refresh-every S` it also
refreshes the roll-ups every S seconds (else run `python -m central rollup` from a timer).

It has no login of its own: it binds to loopback by default; put it behind the operations
network's authenticating reverse proxy to show it further."""

from __future__ import annotations

import argparse
import threading

import structlog

from central.errors import CollectorError
from central.pg_schema import migrate
from central.pg_store import connect
from central.rollups import refresh
from central.store import is_postgres

log = structlog.get_logger(__name__)


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, e.g. 127.0.0.1:8090")
    return host, int(port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True,
                        help="the collectors' database: postgresql://USER@HOST/DATABASE")
    parser.add_argument("--bind", type=_host_port, default=("127.0.0.1", 8090),
                        help="HOST:PORT to serve on (default 127.0.0.1:8090)")
    parser.add_argument("--refresh-every", type=float, default=0.0,
                        help="also refresh the roll-ups every this many seconds (0: never)")
    parser.add_argument("--silent-after", type=float, default=7200.0,
                        help="a device whose last windows are older than this many seconds "
                             "is shown as silent")


def _refresher(dsn: str, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            with connect(dsn) as conn:
                done = refresh(conn)
            log.info("central_rollup_refreshed", device_hours=done.device_hours,
                     seconds=round(done.seconds, 3))
        except Exception as exc:  # the page keeps serving what the roll-ups hold
            log.error("central_rollup_failed", error=str(exc)[:200])


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from central.dashboard import create_app

    if not is_postgres(args.db):
        raise CollectorError("the dashboard reads PostgreSQL's roll-ups: give --db "
                             "postgresql://...")
    with connect(args.db) as conn:
        migrate(conn)
    stop = threading.Event()
    if args.refresh_every > 0:
        threading.Thread(target=_refresher, args=(args.db, args.refresh_every, stop),
                         name="rollup-refresh", daemon=True).start()
    host, port = args.bind
    print(f"dashboard on http://{host}:{port}/", flush=True)
    try:
        uvicorn.run(create_app(args.db, silent_after_s=args.silent_after), host=host,
                    port=port, log_level="warning")
    finally:
        stop.set()
    return 0
