"""`python -m central collect --keys DIR --db FILE|postgresql://... [--bind ENDPOINT]`: run the
collector (a SQLite file, or a PostgreSQL database that several collectors may share).

Raises the open-files limit (one descriptor per device link), creates central's keypair with
`--init-key`, and serves until SIGTERM/SIGINT; see central.collector for what it does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import sys
import threading
from pathlib import Path

from central.collector import SERVER_KEY_NAME, Collector
from central.store import is_postgres
from foundation.curve_keys import create_keypair
from foundation.errors import ConsentGateError


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 86400:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds in (0, 86400]")
    return value


def _database(text: str) -> Path | str:
    return text if is_postgres(text) else Path(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", type=Path, required=True,
                        help="folder of admitted device public keys (NAME.key); central's own "
                             "keypair is central.key_secret here unless --server-key is given")
    parser.add_argument("--db", type=_database, required=True,
                        help="where the windows go: a SQLite file (the embedded default), or "
                             "postgresql://USER@HOST[:PORT]/DATABASE (several collectors may "
                             "share one; libpq's ?host=/socket/dir&port=N work too)")
    parser.add_argument("--bind", default="tcp://127.0.0.1:5570", help="ZeroMQ endpoint")
    parser.add_argument("--server-key", type=Path, default=None,
                        help="central's NAME.key_secret (default DIR/central.key_secret)")
    parser.add_argument("--init-key", action="store_true",
                        help="create central's keypair in --keys if it is missing")
    parser.add_argument("--print-every", type=_positive_seconds, default=5.0,
                        help="seconds between running-total lines (> 0)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    from foundation.logs import configure_logging

    configure_logging(args.log_level)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # one fd per device link
    if args.init_key and args.server_key is None:
        args.keys.mkdir(parents=True, exist_ok=True)
        if not (args.keys / f"{SERVER_KEY_NAME}.key_secret").exists():
            public, _ = create_keypair(args.keys, SERVER_KEY_NAME)
            print(f"created central keypair; give devices {public}", flush=True)
    collector = Collector(args.keys, args.db, args.bind, server_secret_file=args.server_key,
                          print_every_s=args.print_every)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    collector.serve(stop)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m central collect",
                                     description="reference central telemetry collector")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ConsentGateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
