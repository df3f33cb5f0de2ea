"""`python -m central dashboard --db DB [--bind 127.0.0.1:8090] [--origin URL ...]`: serve the
fleet dashboard (central.dashboard) from either central database (a SQLite file or
postgresql://...).

Log-ins come from `python -m central add-user`. uPlot is served from `--assets` (default: the
checkout's web/node_modules, filled by `make web`); the start stops with one line saying to run
`make web` when it is missing. `--origin` gives the address(es) browsers use to reach it (the
Origin every POST must carry; default the bound address, plus `localhost` for 127.0.0.1); behind
a TLS-terminating proxy give its `https://` address, which also makes the cookie `Secure`.
`--trusted-proxy ADDR` (repeatable, an address or network) names that proxy: only from it is
`X-Forwarded-For` believed, so the log-in back-off counts the browser's address, not the proxy's;
from anyone else the header is ignored (it cannot be used to dodge the back-off).
`--tls-cert/--tls-key` serve HTTPS directly. `--scrape-token-file` lets Prometheus scrape
`/metrics` with `Authorization: Bearer TOKEN` (without it, /metrics needs a log-in). With
PostgreSQL, `--refresh-every S` also refreshes the roll-ups every S seconds (else run
`python -m central rollup` from a timer).
"""

from __future__ import annotations

import argparse
import ipaddress
import stat
import threading
from pathlib import Path

import structlog

from central.auth import normal_origin
from central.dashboard_assets import DEFAULT_ASSETS, load_uplot
from central.db_access import central, check_sqlite_file
from central.errors import CollectorError
from central.rollups import refresh
from central.store import is_postgres
from central.users import user_count

log = structlog.get_logger(__name__)
MIN_TOKEN_CHARS = 24


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, e.g. 127.0.0.1:8090")
    return host, int(port)


def _origin(text: str) -> str:
    found = normal_origin(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give an origin, e.g. https://fleet.example")
    return found


def _proxy(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the proxy's address or network, "
                                         "e.g. 10.0.0.5 or 10.0.0.0/24") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", required=True,
                        help="the central database: a SQLite file or postgresql://USER@HOST/DB")
    parser.add_argument("--bind", type=_host_port, default=("127.0.0.1", 8090),
                        help="HOST:PORT to serve on (default 127.0.0.1:8090)")
    parser.add_argument("--origin", type=_origin, action="append", default=[],
                        help="an origin browsers reach the dashboard at (repeatable; default "
                             "the bound address)")
    parser.add_argument("--assets", type=Path, default=DEFAULT_ASSETS,
                        help="the node_modules folder holding uplot/dist (default: the "
                             "checkout's web/node_modules, filled by `make web`)")
    parser.add_argument("--scrape-token-file", type=Path,
                        help="a file (mode 0600) holding the bearer token Prometheus scrapes "
                             "/metrics with")
    parser.add_argument("--trusted-proxy", type=_proxy, action="append", default=[],
                        help="a reverse proxy's address or network whose X-Forwarded-For is "
                             "believed (repeatable; default none: the header is ignored)")
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    parser.add_argument("--session-hours", type=float, default=8.0,
                        help="how long a log-in lasts (default 8)")
    parser.add_argument("--refresh-every", type=float, default=0.0,
                        help="PostgreSQL: also refresh the roll-ups every this many seconds")
    parser.add_argument("--silent-after", type=float, default=7200.0,
                        help="a device whose last windows are older than this many seconds "
                             "is shown as silent")


def read_token(path: Path) -> str:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > 4096:
            raise CollectorError(f"--scrape-token-file {path}: give a small regular file")
        if info.st_mode & 0o077:
            raise CollectorError(f"--scrape-token-file {path} is readable by others: chmod 600 "
                                 "it")
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectorError(f"--scrape-token-file {path}: cannot read it "
                             f"({type(exc).__name__}); give a readable text file") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise CollectorError(f"--scrape-token-file {path}: the token must be one word of "
                             f"{MIN_TOKEN_CHARS}+ characters (e.g. openssl rand -hex 32)")
    return token


def origins_for(args: argparse.Namespace) -> frozenset[str]:
    if args.origin:
        return frozenset(args.origin)
    host, port = args.bind
    if host in ("0.0.0.0", "::", ""):
        raise CollectorError(f"--bind {host}:{port} serves every address: give --origin with "
                             "the address browsers use (e.g. https://fleet.example)")
    scheme = "https" if args.tls_cert else "http"
    names = {host, "localhost"} if host == "127.0.0.1" else {host}
    return frozenset(o for name in names if (o := normal_origin(f"{scheme}://{name}:{port}")))


def _refresher(db: str, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        try:
            with central(db) as handle:
                done = refresh(handle.conn)
            log.info("central_rollup_refreshed", device_hours=done.device_hours,
                     seconds=round(done.seconds, 3))
        except Exception as exc:  # the page keeps serving what the roll-ups hold
            log.error("central_rollup_failed", error=str(exc)[:200])


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from central.dashboard import create_app

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CollectorError("give both --tls-cert and --tls-key, or neither")
    if not 0.01 <= args.session_hours <= 24 * 7:
        raise CollectorError("--session-hours: give 0.01..168")
    uplot = load_uplot(args.assets)
    origins = origins_for(args)
    token = read_token(args.scrape_token_file) if args.scrape_token_file else None
    check_sqlite_file(args.db)
    with central(args.db, prepare=True) as handle:
        users = user_count(handle)
    if users == 0:
        log.warning("central_dashboard_no_users")
        print("no dashboard users yet: add one with python -m central add-user NAME --role "
              f"admin --db {args.db}", flush=True)
    stop = threading.Event()
    if args.refresh_every > 0 and is_postgres(args.db):
        threading.Thread(target=_refresher, args=(args.db, args.refresh_every, stop),
                         name="rollup-refresh", daemon=True).start()
    secure = bool(args.tls_cert) or all(o.startswith("https://") for o in origins)
    host, port = args.bind
    app = create_app(args.db, uplot=uplot, origins=origins, secure_cookie=secure,
                     scrape_token=token, silent_after_s=args.silent_after,
                     session_ttl_s=args.session_hours * 3600)
    print(f"dashboard on {'https' if args.tls_cert else 'http'}://{host}:{port}/", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning",
                    proxy_headers=bool(args.trusted_proxy),
                    forwarded_allow_ips=args.trusted_proxy or None,
                    ssl_certfile=str(args.tls_cert) if args.tls_cert else None,
                    ssl_keyfile=str(args.tls_key) if args.tls_key else None)
    finally:
        stop.set()
    return 0
