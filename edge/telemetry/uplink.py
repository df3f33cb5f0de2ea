"""The device's link to central: one background thread that owns a CurveZMQ DEALER socket.

Each loop it closes due windows (counters -> disclosure control -> `counts/1` -> outbox; the
outbox's sequence number is the window's per-device sequence number), sends unacknowledged
windows oldest first with up to `max_in_flight` ahead of their acks, and reads central's
replies. Delivery follows the Paranoid Pirate idea: heartbeats both ways while idle; when
central stays silent for `heartbeat_liveness` beats, the socket is reopened on the next central
endpoint, with backoff once all were silent (edge.telemetry.endpoints, which also fails back to
the first); unacknowledged windows are resent from the oldest with backoff until acked.

In-order, exactly-once storage: every window carries its outbox row's (epoch, seq) and `prev`,
the sequence number sent just before it on this stream (null for the oldest unacknowledged
window, whose predecessors are all acked, i.e. stored). Central stores a window only when `prev`
is null or its own last stored sequence; otherwise it answers `gap` and the device rewinds to
its oldest unacked window. Acks are cumulative per epoch, sent only after central's commit.
Each run renews the store's epoch once, before its first append (edge.telemetry.outbox: so the
windows of a restored or cloned store reach central under a new epoch).

Nothing lost on a stop or restart: when the outbox is also an `OpenWindowStore` (the consent
store is), the raw counts of the window in progress are saved inside the encrypted store at most
every `OPEN_WINDOW_SAVE_S` seconds when they changed, and at stop. On start they are taken back:
into the current window if it is still the same one, else closed as a finished window through
the usual disclosure control and outbox path. Raw counts never leave the store; what is sent is
unchanged (`counts/1` after suppression).
"""

from __future__ import annotations

import contextlib
import random
import threading
from typing import TypedDict, Unpack

import structlog
import zmq

from edge.telemetry.counters import WindowCounters
from edge.telemetry.disclosure import apply_disclosure_control
from edge.telemetry.endpoints import Endpoints
from edge.telemetry.errors import UnknownCountField
from edge.telemetry.outbox import OpenWindowStore, Outbox
from foundation.clock import Clock
from foundation.curve_keys import load_keypair, load_public_key
from foundation.errors import SchemaError
from foundation.settings import Settings
from wire import telemetry as schema

log = structlog.get_logger(__name__)

PENDING_COUNT_LIMIT = 1_000_000
ACK_SCAN_BATCH = 256
OPEN_WINDOW_SAVE_S = 2.0  # how often (at most) the open window's raw counts are saved


class UplinkOptions(TypedDict, total=False):
    """The keyword options of `Uplink`, as `Uplink.from_settings` passes them on."""

    rng: random.Random | None
    poll_ms: int


class UplinkStatus(TypedDict):
    pending: int  # windows in the outbox not yet acknowledged
    last_ack_seq: int | None
    connected: bool


class Uplink:
    """Sends closed windows to central until each is acknowledged; see the module docstring."""

    def __init__(self, settings: Settings, counters: WindowCounters, outbox: Outbox,
                 clock: Clock, device_keys: tuple[bytes, bytes], central_public_key: bytes,
                 *, rng: random.Random | None = None, poll_ms: int = 50) -> None:
        t = settings.telemetry
        self._endpoints = Endpoints(t.endpoints, t.failback_s, t.resend_initial_s, t.resend_max_s)
        self._k = t.k_anonymity
        self._epsilon = t.laplace_epsilon
        self._resend_initial = t.resend_initial_s
        self._resend_max = t.resend_max_s
        self._hb = t.heartbeat_s
        self._liveness = t.heartbeat_liveness
        self._max_in_flight = t.max_in_flight
        self._device_id = settings.device.device_id
        self._gate_id = settings.device.gate_id
        self._counters = counters
        self._outbox = outbox
        self._clock = clock
        self._public, self._secret = device_keys
        self._server_key = central_public_key
        self._rng = rng or random.SystemRandom()
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._open_store = outbox if isinstance(outbox, OpenWindowStore) else None
        # state below is written by the uplink thread only
        self._unsaved: list[tuple[bytes, int]] = []  # (counts/1 body, window_start)
        self._saved_version = -1
        self._last_save = float("-inf")
        self._pending = 0
        self._last_ack: int | None = None
        self._connected = False
        self._inflight: list[tuple[int, int]] = []  # (seq, epoch) sent, not yet acked
        self._epoch_renewed = False
        self._last_sent: int | None = None
        self._dirty = True
        self._gap_handled: tuple[int, int] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, counters: WindowCounters, outbox: Outbox,
                      clock: Clock, **kwargs: Unpack[UplinkOptions]) -> Uplink:
        """Build from the key files the settings name (KeyFileError when one is missing)."""
        keys = load_keypair(settings.telemetry_device_secret_key_file)
        central = load_public_key(settings.telemetry_central_public_key_file)
        return cls(settings, counters, outbox, clock, keys, central, **kwargs)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("uplink already started")
        self._ctx = zmq.Context()
        self._thread = threading.Thread(target=self._run, name="telemetry-uplink", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Persist windows that have ended and the open window's raw counts, close the
        socket, end the thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("telemetry_uplink_stop_timeout", timeout_s=timeout)
                return
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self._thread = None

    def status(self) -> UplinkStatus:
        return {"pending": self._pending, "last_ack_seq": self._last_ack,
                "connected": self._connected}

    # ------------------------------------------------------------------ windows -> outbox

    def _restore_open_windows(self) -> None:
        """Take back the raw counts an earlier process saved (see the module docstring)."""
        if self._open_store is None:
            return
        try:
            saved = self._open_store.load_open_windows()
        except Exception as exc:  # an unreadable store is reported by the outbox path too
            log.error("telemetry_open_window_unreadable", error=type(exc).__name__)
            return
        resumed = closed = 0
        for start, length, counts in saved:
            try:
                if self._counters.restore(start, length, counts):
                    resumed += 1
                else:
                    closed += 1
            except (ValueError, TypeError, UnknownCountField) as exc:
                log.error("telemetry_open_window_invalid", error=type(exc).__name__)
        if saved:
            log.info("telemetry_open_window_restored", resumed=resumed, closed=closed)

    def _save_open_window(self, *, force: bool = False) -> None:
        """Keep the open window's raw counts in the store when they changed."""
        if self._open_store is None:
            return
        now = self._clock.monotonic()
        if not force and now - self._last_save < OPEN_WINDOW_SAVE_S:
            return
        version = self._counters.version
        if version == self._saved_version:
            return
        window = self._counters.snapshot()
        try:
            self._open_store.save_open_window(window.start, window.length_s, window.counts)
        except Exception as exc:  # busy or failing store: try again next time
            log.error("telemetry_open_window_save_failed", error=type(exc).__name__)
            return
        self._saved_version, self._last_save = version, now

    def _close_windows(self) -> None:
        for window in self._counters.close_due():
            published = apply_disclosure_control(window.counts, self._k, self._epsilon,
                                                 self._rng)
            self._unsaved.append((schema.encode_counts(self._device_id, self._gate_id, window,
                                                       published, self._k, self._epsilon),
                                  window.start))
        while self._unsaved and self._renew_epoch():
            payload, start = self._unsaved[0]
            try:
                if self._open_store is not None:
                    seq = self._open_store.append(payload, window_start=start)
                else:
                    seq = self._outbox.append(payload)
            except Exception as exc:  # the store is busy or failing: keep it, retry next loop
                log.error("telemetry_outbox_append_failed", error=type(exc).__name__,
                          waiting=len(self._unsaved))
                return
            self._unsaved.pop(0)
            self._pending += 1
            self._dirty = True
            log.info("telemetry_window_queued", seq=seq, pending=self._pending)

    def _renew_epoch(self) -> bool:
        """A new epoch before this run's first append (retried while the store fails)."""
        if not self._epoch_renewed:
            try:
                epoch = self._outbox.renew_epoch()
            except Exception as exc:  # busy or failing store: nothing is appended meanwhile
                log.error("telemetry_epoch_renew_failed", error=type(exc).__name__)
                return False
            self._epoch_renewed = True
            log.info("telemetry_epoch_renewed", epoch=epoch)
        return True

    # ------------------------------------------------------------------ socket

    def _connect(self) -> zmq.Socket[bytes]:
        assert self._ctx is not None
        sock = self._ctx.socket(zmq.DEALER)
        sock.curve_serverkey = self._server_key
        sock.curve_publickey = self._public
        sock.curve_secretkey = self._secret
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, schema.SOCKET_MAXMSGSIZE)  # larger: dropped by libzmq
        sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue on a connection that is not up
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, int(self._resend_max * 1000))
        endpoint = self._endpoints.connecting(self._clock.monotonic())
        sock.connect(endpoint)
        self._rewind()
        log.info("telemetry_connecting", endpoint=endpoint)
        return sock

    def _rewind(self) -> None:
        """Start a fresh stream at the oldest unacknowledged window."""
        self._inflight = []
        self._last_sent = None
        self._dirty = True

    def _send_more(self, sock: zmq.Socket[bytes]) -> bool:
        """Send unsent pending windows while the in-flight window allows; True if any went."""
        if not self._dirty or len(self._inflight) >= self._max_in_flight:
            return False
        rows = self._outbox.pending_windows(self._max_in_flight)
        self._dirty = False
        sent = False
        for seq, epoch, payload in rows:
            if self._last_sent is not None and seq <= self._last_sent:
                continue
            if len(self._inflight) >= self._max_in_flight:
                break
            try:
                sock.send_multipart([schema.window_header(epoch, seq, self._last_sent),
                                     payload], flags=zmq.NOBLOCK)
            except zmq.Again:  # no connection yet: try again next loop
                self._dirty = True
                break
            self._inflight.append((seq, epoch))
            self._last_sent = seq
            sent = True
        return sent

    def _ack_upto(self, epoch: int, upto: int) -> bool:
        """Central holds `epoch` up to `upto`: drop those windows from the outbox."""
        progressed = False
        inflight = self._inflight
        if inflight and inflight[0][1] == epoch and upto <= (self._last_sent or 0):
            while inflight and inflight[0][1] == epoch and inflight[0][0] <= upto:
                self._outbox.ack(inflight.pop(0)[0])
                self._pending = max(0, self._pending - 1)
                progressed = True
        else:  # acks from an earlier stream: look in the outbox itself
            while True:
                rows = self._outbox.pending_windows(ACK_SCAN_BATCH)
                done = [seq for seq, e, _ in rows if e == epoch and seq <= upto]
                for seq in done:
                    self._outbox.ack(seq)
                    self._pending = max(0, self._pending - 1)
                    progressed = True
                if len(done) < len(rows) or not rows:
                    break
            self._inflight = [(s, e) for s, e in inflight if e != epoch or s > upto]
        if progressed:
            self._dirty = True
        if self._last_ack is None or upto > self._last_ack:
            self._last_ack = upto
        return progressed

    def _handle(self, frames: list[bytes]) -> bool:
        """One reply from central; True when it acknowledged something new."""
        if len(frames) != 1:
            log.warning("telemetry_reply_malformed", frames=len(frames))
            return False
        try:
            msg = schema.decode_header(frames[0])
        except SchemaError as exc:
            log.warning("telemetry_reply_malformed", reason=str(exc))
            return False
        kind = msg["type"]
        if kind == "ack":
            progressed = self._ack_upto(msg["epoch"], msg["seq"])
            if progressed:
                self._gap_handled = None
            return progressed
        if kind == "gap":
            progressed = self._ack_upto(msg["epoch"], msg["seq"])
            if self._gap_handled != (msg["epoch"], msg["seq"]):
                self._gap_handled = (msg["epoch"], msg["seq"])
                log.info("telemetry_gap_rewind", central_last_seq=msg["seq"])
                self._rewind()
            return progressed
        if kind == "reject":
            log.error("telemetry_window_rejected", seq=msg["seq"], code=msg["code"],
                      reason=msg["reason"])
        return False

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            self._pending = len(self._outbox.pending(PENDING_COUNT_LIMIT))
        except Exception as exc:
            log.error("telemetry_outbox_unreadable", error=type(exc).__name__)
        self._restore_open_windows()
        mono = self._clock.monotonic
        sock: zmq.Socket[bytes] | None = None
        resend_backoff = self._resend_initial
        next_connect = mono()
        last_recv = last_send = last_progress = mono()
        try:
            while not self._stop.is_set():
                try:
                    self._close_windows()
                    self._save_open_window()
                    now = mono()
                    if sock is None:
                        if now < next_connect:
                            self._stop.wait(self._poll_ms / 1000)
                            continue
                        sock = self._connect()
                        last_recv = last_send = last_progress = now
                        self._gap_handled = None
                    if self._send_more(sock):
                        last_send = mono()
                    if sock.poll(self._poll_ms, zmq.POLLIN):
                        while True:
                            try:
                                frames = sock.recv_multipart(zmq.NOBLOCK)
                            except zmq.Again:
                                break
                            last_recv = mono()
                            if not self._connected:
                                log.info("telemetry_connected")
                            self._connected = True
                            self._endpoints.heard()
                            if self._handle(frames):
                                last_progress = last_recv
                                resend_backoff = self._resend_initial
                    now = mono()
                    if now - last_send >= self._hb:
                        with contextlib.suppress(zmq.Again):
                            sock.send(schema.HEARTBEAT, flags=zmq.NOBLOCK)
                        last_send = now
                    silent = now - last_recv > self._hb * self._liveness
                    if silent or self._endpoints.failback_due(now):
                        if silent and self._connected:
                            log.warning("telemetry_central_silent", pending=self._pending)
                        self._connected = False
                        sock.close(linger=0)
                        sock = None
                        next_connect = now + self._endpoints.leave(silent)
                        continue
                    if self._inflight and now - last_progress >= resend_backoff:
                        log.info("telemetry_resend", inflight=len(self._inflight),
                                 backoff_s=resend_backoff)
                        self._rewind()
                        last_progress = now
                        resend_backoff = min(resend_backoff * 2, self._resend_max)
                except zmq.ContextTerminated:
                    return
                except Exception as exc:  # keep the thread alive; the outbox keeps the data
                    log.error("telemetry_uplink_error", error=type(exc).__name__,
                              detail=str(exc)[:200])
                    self._stop.wait(min(1.0, self._resend_initial))
        finally:
            try:
                self._close_windows()
                self._save_open_window(force=True)
            except Exception as exc:
                log.error("telemetry_final_close_failed", error=type(exc).__name__)
            if sock is not None:
                sock.close(linger=0)
            self._connected = False
