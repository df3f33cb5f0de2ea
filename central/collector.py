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
epoch, or null), committed to SQLite in batches (central.windows_db), and only then
acknowledged (cumulative acks per epoch).

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
class _Device:
    key: str
    epoch: int  # the current epoch
    epochs: dict[int, int]  # every epoch seen -> the last seq stored in it

    @property
    def last_seq(self) -> int:
        return self.epochs[self.epoch]


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
        self._devices = {}
        for name, (key, epoch) in state.devices.items():
            epochs = state.epochs.get(name, {})
            epochs.setdefault(epoch, 0)
            self._devices[name] = _Device(key, epoch, epochs)
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
            raise Rejected(f"this key sends as device {bound!r}, not {device!r}", "identity")
        epoch, seq, prev = header["epoch"], header["seq"], header["prev"]
        state = self._devices.get(device)
        if state is None:
            state = _Device(key, epoch, {epoch: 0})
            self._devices[device] = state
            self._key_device[key] = device
            writes.append(("new", device, key, epoch))
            writes.append(("epoch", device, epoch, now))
        elif state.key != key:
            raise Rejected(f"device {device!r} belongs to another key", "identity")
        new_epoch = False
        if epoch != state.epoch:
            last = state.epochs.get(epoch)
            if last is not None:  # an epoch this device has left behind
                if seq <= last:
                    self.stats.duplicates += 1
                    return schema.ack(epoch, last)
                self._interleaving(device, key, state, epoch, seq)
            new_epoch = True  # a restored, restarted or cloned store: a new epoch begins
        if not new_epoch and seq <= state.last_seq:
            self.stats.duplicates += 1
            return schema.ack(epoch, state.last_seq)
        if prev is not None and prev != state.last_seq:
            self.stats.gaps += 1
            return schema.gap(state.epoch, state.last_seq)
        if new_epoch:
            writes.append(("epoch", device, epoch, now))
            log.info("telemetry_epoch_started", device=device, epoch=epoch,
                     previous_epoch=state.epoch, previous_last_seq=state.last_seq)
            self.stats.new_epochs += 1
            state.epoch = epoch
        counts = body["counts"]
        writes.append(("win", (device, epoch, seq, body["gate"], body["window_start"],
                               body["window_s"], body["k"], body["epsilon"], now,
                               *(counts[f] for f in COUNT_FIELDS))))
        state.epochs[epoch] = seq
        self.stats.stored += 1
        for name in COUNT_FIELDS:
            value = counts[name]
            if value is None:
                self.stats.suppressed += 1
            else:
                self.stats.totals[name] += value
        return schema.ack(epoch, seq)

    def _interleaving(self, device: str, key: str, state: _Device, epoch: int,
                      seq: int) -> None:
        """A new window of a superseded epoch: two copies of one store are sending."""
        self.stats.interleaved += 1
        log.error("telemetry_epoch_interleaving", device=device, key=key[:8], epoch=epoch,
                  seq=seq, epoch_last_seq=state.epochs[epoch], current_epoch=state.epoch,
                  alert="two copies of this device's store are sending (a clone or a "
                        "restored backup beside the original): retire one, re-provision it")
        raise Rejected(f"epoch {epoch} of {device} was superseded by epoch {state.epoch}: "
                       "another copy of this store is sending; retire one copy and "
                       "re-provision it (python -m provisioning init)", "epoch_superseded")

    def _one(self, frames: list[zmq.Frame], writes: list[tuple], now: float) -> bytes:
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
                    return self._window(key, header, frames[2].bytes, writes, now)
                raise Rejected(f"unexpected {kind} message with {len(frames) - 1} frame(s)",
                               "unexpected")
            except Rejected:
                raise
            except Exception as exc:  # a bug here must not end the collector (or store a part)
                log.error("telemetry_message_failed", key=key[:8], error=type(exc).__name__)
                raise Rejected("the collector failed on this message and stored nothing of "
                               "it", "internal") from None
        except Rejected as exc:
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

    def handle_batch(self, batch: list[list[zmq.Frame]]) -> list[list[bytes]]:
        """Process received messages; commit; return the replies to send (after the commit)."""
        writes: list[tuple] = []
        now = time.time()
        replies = [[frames[0].bytes, self._one(frames, writes, now)] for frames in batch
                   if len(frames) >= 2]  # (a ROUTER always gives identity + >= 1 frame)
        if writes:
            try:
                windows_db.commit(self._db, writes)
            except (sqlite3.Error, ValueError, OverflowError) as exc:
                log.error("telemetry_store_failed", error=str(exc)[:200], lost_acks=len(batch))
                self._load_state(self._db)  # forget what was not committed; devices resend
                return []
        return replies

    # ------------------------------------------------------------------ serving

    def print_totals(self) -> None:
        s = self.stats
        counts = " ".join(f"{k}={v}" for k, v in s.totals.items())
        codes = ",".join(f"{k}:{v}" for k, v in sorted(s.reject_codes.items()))
        print(f"totals windows={s.stored} devices={len(self._devices)} duplicates={s.duplicates}"
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
            self._db.close()
            if started:
                log.info("telemetry_collector_stopped", stored=self.stats.stored)
