"""Reference central collector (run by `python -m central collect`, see central.collect_cmd).

One CurveZMQ ROUTER socket that every device's DEALER connects to (fan-in through ZeroMQ
itself). ZAP (pyzmq's ThreadAuthenticator) admits only device public keys found as *.key files
in DIR, re-read when DIR changes (central.allow_list); central's own keypair is
DIR/central.key_secret unless --server-key names another (`--init-key` creates it). The
authenticated key is bound to the first device id it sends; a device id is never accepted from
another key.

Frames are decoded by the bounded, strict decoders of wire.telemetry (`uplink/2` header,
`counts/1` body, k included); the socket's ZMQ_MAXMSGSIZE drops larger frames with their
connection before they are read. Windows are deduplicated by (device, epoch, seq), stored in
order (a window is stored only when its `prev` is the last seq stored in the device's current
epoch, or null; the rules of central.sequencing), committed in batches, one transaction each,
and only then acknowledged (cumulative acks per epoch). `--db` chooses the store
(central.store): a SQLite file (central.windows_db, one collector) or `postgresql://...`
(central.pg_store: several collectors may serve one database, each device's state is locked
and read inside the batch's transaction).

Epochs: a device's store renews its epoch at every start, so a restored or cloned store's
repeated sequence numbers arrive under a new epoch. A window of an epoch never seen for the
device starts that epoch (it becomes current; the earlier one is superseded) and is stored like
any other. A window of a superseded epoch is a re-send when its seq is at or below that epoch's
last stored seq (acked again); above it, two copies of the store are sending side by side (a
clone beside the original): refused (`epoch_superseded`) with an alert (the log event
`telemetry_epoch_interleaving` and the `interleaved` counter of the totals).

Every refusal is a typed `reject` (its code from wire.telemetry.REJECT_CODES), logged and
counted; nothing a device sends ends the process. Running totals are printed to stdout.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import structlog
import zmq
from zmq.auth.thread import ThreadAuthenticator

from central.allow_list import AllowList
from central.errors import CollectorError
from central.sequencing import Incoming, Outcome
from central.store import StoreFailed, WindowStore, is_postgres
from foundation.curve_keys import load_keypair
from foundation.errors import KeyFileError
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS, Rejected

log = structlog.get_logger(__name__)

SERVER_KEY_NAME = "central"
BATCH_MAX = 4096
RCVHWM = 20_000  # messages queued per device connection (libzmq then stops reading from it)
_NOBLOCK = int(zmq.NOBLOCK)  # plain ints: enum flag arithmetic costs per message
_SNDMORE_NOBLOCK = int(zmq.NOBLOCK | zmq.SNDMORE)


@dataclass
class Stats:
    stored: int = 0
    duplicates: int = 0
    gaps: int = 0
    rejected: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)
    interleaved: int = 0  # windows of a superseded epoch beyond its last seq (clone alerts)
    new_epochs: int = 0
    heartbeats: int = 0
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_FIELDS, 0))
    suppressed: int = 0


def open_store(db: Path | str) -> WindowStore:
    """The store `--db` names: `postgresql://...` PostgreSQL, else a SQLite file."""
    if is_postgres(db):
        from central.pg_store import PostgresStore

        return PostgresStore(str(db))
    from central.windows_db import SqliteStore

    return SqliteStore(Path(db))


class Collector:
    """Serves the ROUTER socket until `stop` is set; see the module docstring."""

    def __init__(self, keys_dir: Path | str, db: Path | str,
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
        self.bind = bind
        self.endpoint: str | None = None
        self.stats = Stats()
        self._out = out or sys.stdout
        self._print_every = print_every_s
        self.store = open_store(db)
        first = self.store.initial()
        self.stats.stored, self.stats.suppressed = first.stored, first.suppressed
        self.stats.totals = dict(first.totals)
        self._served = False

    # ------------------------------------------------------------------ messages

    def _refuse(self, exc: Rejected, key: str, header: dict[str, Any] | None) -> bytes:
        self.stats.rejected += 1
        codes = self.stats.reject_codes
        codes[exc.code] = codes.get(exc.code, 0) + 1
        epoch = header.get("epoch") if header else None
        seq = header.get("seq") if header else None
        log.warning("telemetry_message_rejected", key=key[:8], code=exc.code, seq=seq,
                    reason=schema.printable(str(exc)))
        if exc.code == "retired_schema":  # an uplink/1 device: in words it can read
            return schema.reject_retired(str(exc))
        return schema.reject(exc.code, str(exc), epoch=epoch if isinstance(epoch, int)
                             else None, seq=seq if isinstance(seq, int) else None)

    def _one(self, frames: list[zmq.Frame], windows: list[Incoming]) -> bytes | None:
        """The answer to one message, or None for a valid window (added to `windows`)."""
        key = "?"
        header: dict[str, Any] | None = None
        try:
            try:
                key = str(frames[1].get("User-Id") or "?")
                header = schema.decode_header(frames[1].bytes)
                kind = header["type"]
                if kind == "heartbeat" and len(frames) == 2:
                    self.stats.heartbeats += 1
                    return schema.HEARTBEAT
                if kind == "window" and len(frames) == 3:
                    windows.append(Incoming(key, header, schema.decode_counts(frames[2].bytes)))
                    return None
                raise Rejected(f"unexpected {kind} message with {len(frames) - 1} frame(s)",
                               "unexpected")
            except Rejected:
                raise
            except Exception as exc:  # a bug here must not end the collector (or store a part)
                log.error("telemetry_message_failed", key=key[:8], error=type(exc).__name__)
                raise Rejected("the collector failed on this message and stored nothing of "
                               "it", "internal") from None
        except Rejected as exc:
            return self._refuse(exc, key, header)

    def _account(self, w: Incoming, outcome: Outcome) -> bytes:
        """Count a committed outcome; its answer."""
        s = self.stats
        if outcome.kind == "stored":
            s.stored += 1
            s.new_epochs += outcome.new_epoch
            for name, value in w.body["counts"].items():
                if value is None:
                    s.suppressed += 1
                else:
                    s.totals[name] += value
        elif outcome.kind == "duplicate":
            s.duplicates += 1
        elif outcome.kind == "gap":
            s.gaps += 1
        elif outcome.error is not None:
            s.interleaved += outcome.error.code == "epoch_superseded"
            return self._refuse(outcome.error, w.key, w.header)
        return outcome.reply

    def handle_batch(self, batch: list[list[zmq.Frame]]) -> list[list[bytes]]:
        """Process received messages; commit; return the replies to send (after the commit)."""
        replies: list[list[bytes]] = []
        windows: list[Incoming] = []
        slots: list[int] = []
        for frames in batch:
            if len(frames) < 2:  # (a ROUTER always gives identity + >= 1 frame)
                continue
            answer = self._one(frames, windows)
            if answer is None:
                slots.append(len(replies))
            replies.append([frames[0].bytes, answer or b""])
        if windows:
            try:
                outcomes = self.store.apply(windows, time.time())
            except StoreFailed as exc:
                log.error("telemetry_store_failed", error=str(exc)[:200], lost_acks=len(batch))
                return []  # nothing answered: the devices resend
            for slot, w, outcome in zip(slots, windows, outcomes, strict=True):
                replies[slot][1] = self._account(w, outcome)
        return replies

    # ------------------------------------------------------------------ serving

    def print_totals(self) -> None:
        s = self.stats
        counts = " ".join(f"{k}={v}" for k, v in s.totals.items())
        codes = ",".join(f"{k}:{v}" for k, v in sorted(s.reject_codes.items()))
        print(f"totals windows={s.stored} devices={self.store.device_count()} "
              f"duplicates={s.duplicates}"
              f" gaps={s.gaps} rejected={s.rejected} interleaved={s.interleaved}"
              f" new_epochs={s.new_epochs} suppressed_cells={s.suppressed}"
              f"{' rejects=' + codes if codes else ''} | {counts}", file=self._out, flush=True)

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
            sock.setsockopt(zmq.MAXMSGSIZE, schema.SOCKET_MAXMSGSIZE)  # larger: dropped
            sock.setsockopt(zmq.RCVHWM, RCVHWM)
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
                    batch: list[list[zmq.Frame]] = []
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
            self.store.close()
            if started:
                log.info("telemetry_collector_stopped", stored=self.stats.stored)
