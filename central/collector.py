"""Reference central collector: `python -m central collect --keys DIR --db FILE`.

One CurveZMQ ROUTER socket that every device's DEALER connects to (fan-in through ZeroMQ
itself). ZAP (pyzmq's ThreadAuthenticator) admits only device public keys found as *.key files
in DIR (re-read when DIR changes); central's own keypair is DIR/central.key_secret unless
--server-key names another (`--init-key` creates it). The authenticated key is bound to the
first device id it sends; a device id is never accepted from another key.

Windows are validated (`uplink/1` + `counts/1`, k included), deduplicated by (device, seq),
stored in order (a window is stored only when its `prev` is this device's last stored seq or
null), committed to SQLite in batches, and only then acknowledged (cumulative acks). Malformed
messages are answered with `reject` and logged; the collector keeps serving. Running totals
are printed to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import structlog
import zmq
from zmq.auth.thread import ThreadAuthenticator

from foundation.curve_keys import create_keypair, load_keypair
from foundation.errors import ConsentGateError, KeyFileError, SchemaError
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS

log = structlog.get_logger(__name__)

SERVER_KEY_NAME = "central"
BATCH_MAX = 4096
_NOBLOCK = int(zmq.NOBLOCK)  # plain ints: enum flag arithmetic costs per message
_SNDMORE_NOBLOCK = int(zmq.NOBLOCK | zmq.SNDMORE)


class CollectorError(ConsentGateError):
    """The collector cannot start (database, keys, endpoint)."""


class AllowList:
    """ZAP credentials provider: device public keys = *.key files in a folder (minus central's)."""

    def __init__(self, directory: Path, exclude: bytes) -> None:
        self._dir = directory
        self._exclude = exclude
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._keys: frozenset[bytes] = frozenset()
        self.reload()

    def reload(self) -> None:
        try:
            st = self._dir.stat()
            keys = zmq.auth.load_certificates(self._dir)
        except (OSError, ValueError) as exc:
            raise CollectorError(f"cannot read the device allow-list in {self._dir} ({exc}): "
                                 "it must be a folder of device public key files "
                                 "(NAME.key)") from None
        with self._lock:
            self._keys = frozenset(keys) - {self._exclude}
            self._stamp = (st.st_mtime, len(keys))
        log.info("telemetry_allow_list_loaded", devices=len(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the authenticator thread with the client's Z85 public key."""
        try:
            st = self._dir.stat()
            if self._stamp is None or st.st_mtime != self._stamp[0]:
                self.reload()
        except (OSError, CollectorError) as exc:
            log.error("telemetry_allow_list_unreadable", error=str(exc)[:200])
        allowed = key in self._keys
        if not allowed:
            log.warning("telemetry_device_denied", key=key[:8].decode("ascii", "replace"))
        return allowed


@dataclass
class _Device:
    key: str
    last_seq: int


@dataclass
class Stats:
    stored: int = 0
    duplicates: int = 0
    gaps: int = 0
    rejected: int = 0
    heartbeats: int = 0
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_FIELDS, 0))
    suppressed: int = 0


_COLS = ", ".join(f"{name} INTEGER" for name in COUNT_FIELDS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS windows (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    gate TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_s INTEGER NOT NULL,
    k INTEGER NOT NULL,
    epsilon REAL,
    received_at REAL NOT NULL,
    {_COLS},
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
"""
_INSERT = (f"INSERT INTO windows (device, seq, gate, window_start, window_s, k, epsilon, "
           f"received_at, {', '.join(COUNT_FIELDS)}) VALUES "
           f"({', '.join('?' * (8 + len(COUNT_FIELDS)))})")


class Collector:
    """Serves the ROUTER socket until `stop` is set; see the module docstring."""

    def __init__(self, keys_dir: Path | str, db_path: Path | str,
                 bind: str = "tcp://127.0.0.1:5570", *, server_secret_file: Path | None = None,
                 out: TextIO | None = None, print_every_s: float = 5.0) -> None:
        self.keys_dir = Path(keys_dir)
        if not self.keys_dir.is_dir():
            raise CollectorError(f"--keys {self.keys_dir} is not a folder: create it and put "
                                 "each admitted device's public key file (NAME.key) in it")
        secret_file = server_secret_file or self.keys_dir / f"{SERVER_KEY_NAME}.key_secret"
        if server_secret_file is not None and not secret_file.is_file():
            raise CollectorError(f"--server-key {secret_file} is not a file: name central's "
                                 "NAME.key_secret, or leave --server-key out to use "
                                 f"{self.keys_dir / SERVER_KEY_NAME}.key_secret")
        if not secret_file.exists():
            raise CollectorError(f"central's keypair {secret_file} is missing: run the "
                                 "collector once with --init-key to create it (then give "
                                 f"devices {SERVER_KEY_NAME}.key), or name one with "
                                 "--server-key")
        try:
            self.public_key, self._secret_key = load_keypair(secret_file)
        except KeyFileError as exc:
            raise CollectorError(f"central's keypair: {exc}") from None
        self.allow = AllowList(self.keys_dir, self.public_key)
        self.db_path = Path(db_path)
        self.bind = bind
        self.endpoint: str | None = None
        self.stats = Stats()
        self._out = out or sys.stdout
        self._print_every = print_every_s
        self._devices: dict[str, _Device] = {}
        self._key_device: dict[str, str] = {}
        self._db = self._open_db()
        self._served = False

    # ------------------------------------------------------------------ storage

    def _open_db(self) -> sqlite3.Connection:
        try:
            # built in one thread, served in another (one serve() at a time, see serve)
            db = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._load_state(db)
        except sqlite3.Error as exc:
            raise CollectorError(f"cannot use database {self.db_path} ({exc}): give a writable "
                                 "SQLite file made by this collector") from None
        return db

    def _load_state(self, db: sqlite3.Connection) -> None:
        self._devices = {d: _Device(k, s) for d, k, s in
                         db.execute("SELECT device, public_key, last_seq FROM devices")}
        self._key_device = {d.key: name for name, d in self._devices.items()}
        sums = ", ".join(f"COALESCE(SUM({f}), 0)" for f in COUNT_FIELDS)
        nulls = " + ".join(f"COALESCE(SUM({f} IS NULL), 0)" for f in COUNT_FIELDS)
        row = db.execute(f"SELECT COUNT(*), {nulls}, {sums} FROM windows").fetchone()
        self.stats.stored, self.stats.suppressed = row[0], row[1]
        self.stats.totals = dict(zip(COUNT_FIELDS, row[2:], strict=True))

    # ------------------------------------------------------------------ messages

    def _window(self, key: str, header: dict[str, Any], body_frame: bytes,
                writes: list[tuple], now: float) -> bytes:
        body = schema.decode_counts(body_frame)
        device = body["device"]
        bound = self._key_device.get(key)
        if bound is not None and bound != device:
            raise SchemaError(f"this key sends as device {bound!r}, not {device!r}")
        state = self._devices.get(device)
        if state is None:
            state = _Device(key, 0)
            self._devices[device] = state
            self._key_device[key] = device
            writes.append(("new", device, key))
        elif state.key != key:
            raise SchemaError(f"device {device!r} belongs to another key")
        seq, prev = header["seq"], header["prev"]
        if seq <= state.last_seq:
            self.stats.duplicates += 1
            return schema.ack(state.last_seq)
        if prev is not None and prev != state.last_seq:
            self.stats.gaps += 1
            return schema.gap(state.last_seq)
        counts = body["counts"]
        writes.append(("win", (device, seq, body["gate"], body["window_start"],
                               body["window_s"], body["k"], body["epsilon"], now,
                               *(counts[f] for f in COUNT_FIELDS))))
        state.last_seq = seq
        self.stats.stored += 1
        for name in COUNT_FIELDS:
            value = counts[name]
            if value is None:
                self.stats.suppressed += 1
            else:
                self.stats.totals[name] += value
        return schema.ack(seq)

    def _one(self, frames: list[zmq.Frame], writes: list[tuple], now: float) -> bytes:
        key = frames[1].get("User-Id") or "?"
        header: dict[str, Any] | None = None
        try:
            header = schema.decode_header(frames[1].bytes)
            kind = header["type"]
            if kind == "heartbeat" and len(frames) == 2:
                self.stats.heartbeats += 1
                return schema.HEARTBEAT
            if kind == "window" and len(frames) == 3:
                return self._window(key, header, frames[2].bytes, writes, now)
            raise SchemaError(f"unexpected {kind} message with {len(frames) - 1} frame(s)")
        except SchemaError as exc:
            self.stats.rejected += 1
            seq = header.get("seq") if header else None
            log.warning("telemetry_message_rejected", key=key[:8], seq=seq, reason=str(exc))
            return schema.reject(seq if isinstance(seq, int) else None, str(exc))

    def _commit(self, writes: list[tuple]) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            rows = [w[1] for w in writes if w[0] == "win"]
            for w in writes:
                if w[0] == "new":
                    db.execute("INSERT INTO devices (device, public_key, last_seq) "
                               "VALUES (?, ?, 0)", (w[1], w[2]))
            db.executemany(_INSERT, rows)
            last: dict[str, int] = {}
            for r in rows:
                last[r[0]] = r[1]
            db.executemany("UPDATE devices SET last_seq = ? WHERE device = ?",
                           [(s, d) for d, s in last.items()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def handle_batch(self, batch: list[list[zmq.Frame]]) -> list[list[bytes]]:
        """Process received messages; commit; return the replies to send (after the commit)."""
        writes: list[tuple] = []
        now = time.time()
        replies = [[frames[0].bytes, self._one(frames, writes, now)] for frames in batch]
        if writes:
            try:
                self._commit(writes)
            except sqlite3.Error as exc:
                log.error("telemetry_store_failed", error=str(exc)[:200], lost_acks=len(batch))
                self._load_state(self._db)  # forget what was not committed; devices resend
                return []
        return replies

    # ------------------------------------------------------------------ serving

    def print_totals(self) -> None:
        s = self.stats
        counts = " ".join(f"{k}={v}" for k, v in s.totals.items())
        print(f"totals windows={s.stored} devices={len(self._devices)} duplicates={s.duplicates}"
              f" gaps={s.gaps} rejected={s.rejected} suppressed_cells={s.suppressed} | {counts}",
              file=self._out, flush=True)

    def serve(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Serve until `stop` is set, from any one thread; closes the database on the way out.

        A Collector serves once: build a new one (on the same --db) to serve again.
        """
        if self._served:
            raise CollectorError("this Collector has already served and closed its database: "
                                 "build a new Collector on the same --db")
        self._served = True
        ctx = zmq.Context()
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve_callback("*", credentials_provider=self.allow)
        sock = ctx.socket(zmq.ROUTER)
        started = False
        try:
            sock.curve_server = True
            sock.curve_publickey = self.public_key
            sock.curve_secretkey = self._secret_key
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, 200_000)
            sock.setsockopt(zmq.SNDHWM, 200_000)
            try:
                sock.bind(self.bind)
            except zmq.ZMQError as exc:
                raise CollectorError(f"cannot listen on {self.bind} ({exc}): give --bind "
                                     "tcp://HOST:PORT with a local address and a free "
                                     "port") from None
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            print(f"collector listening on {self.endpoint} devices_allowed={len(self.allow)}",
                  file=self._out, flush=True)
            log.info("telemetry_collector_started", devices_allowed=len(self.allow))
            started = True
            if ready is not None:
                ready.set()
            next_print = time.monotonic() + self._print_every
            dirty = False
            while not stop.is_set():
                if sock.poll(200, zmq.POLLIN):
                    batch = []
                    while len(batch) < BATCH_MAX:
                        try:
                            frames = [sock.recv(_NOBLOCK, copy=False)]
                        except zmq.Again:
                            break
                        while frames[-1].more:  # the rest of a message is already here
                            frames.append(sock.recv(_NOBLOCK, copy=False))
                        batch.append(frames)
                    for ident, reply in self.handle_batch(batch):
                        with contextlib.suppress(zmq.Again):
                            sock.send(ident, _SNDMORE_NOBLOCK)
                            sock.send(reply, _NOBLOCK)
                    dirty = True
                if dirty and time.monotonic() >= next_print:
                    self.print_totals()
                    next_print = time.monotonic() + self._print_every
                    dirty = False
            self.print_totals()
        finally:
            sock.close(linger=0)
            auth.stop()
            ctx.term()
            self._db.close()
            if started:
                log.info("telemetry_collector_stopped", stored=self.stats.stored)


# ---------------------------------------------------------------------- CLI

def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 86400:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds in (0, 86400]")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", type=Path, required=True,
                        help="folder of admitted device public keys (NAME.key); central's own "
                             "keypair is central.key_secret here unless --server-key is given")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file for the windows")
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
