"""Reference central collector (run by `python -m central collect`, see central.collect_cmd).

One CurveZMQ ROUTER socket that every device's DEALER connects to (fan-in through ZeroMQ
itself). ZAP (pyzmq's ThreadAuthenticator) admits only device public keys found as *.key files
in DIR, re-read when DIR changes (central.allow_list); central's own keypair is
DIR/central.key_secret unless --server-key names another (`--init-key` creates it). The
authenticated key is bound to the first device id it sends; a device id is never accepted from
another key.

Windows are validated (`uplink/1` + `counts/1`, k included), deduplicated by (device, seq),
stored in order (a window is stored only when its `prev` is this device's last stored seq or
null), committed to SQLite in batches (central.windows_db), and only then acknowledged
(cumulative acks). Malformed messages are answered with `reject` and logged; the collector
keeps serving. Running totals are printed to stdout.
"""

from __future__ import annotations

import contextlib
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

from central import windows_db
from central.allow_list import AllowList
from central.errors import CollectorError
from foundation.curve_keys import load_keypair
from foundation.errors import KeyFileError, SchemaError
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS

log = structlog.get_logger(__name__)

SERVER_KEY_NAME = "central"
BATCH_MAX = 4096
_NOBLOCK = int(zmq.NOBLOCK)  # plain ints: enum flag arithmetic costs per message
_SNDMORE_NOBLOCK = int(zmq.NOBLOCK | zmq.SNDMORE)


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
        self._db = windows_db.open_db(self.db_path)
        self._load_state(self._db)
        self._served = False

    # ------------------------------------------------------------------ storage

    def _load_state(self, db: sqlite3.Connection) -> None:
        state = windows_db.load_state(db)
        self._devices = {d: _Device(k, s) for d, (k, s) in state.devices.items()}
        self._key_device = {d.key: name for name, d in self._devices.items()}
        self.stats.stored, self.stats.suppressed = state.stored, state.suppressed
        self.stats.totals = state.totals

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

    def handle_batch(self, batch: list[list[zmq.Frame]]) -> list[list[bytes]]:
        """Process received messages; commit; return the replies to send (after the commit)."""
        writes: list[tuple] = []
        now = time.time()
        replies = [[frames[0].bytes, self._one(frames, writes, now)] for frames in batch]
        if writes:
            try:
                windows_db.commit(self._db, writes)
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
