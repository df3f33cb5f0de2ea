"""The gate controller's ZeroMQ server: one loop joining the link, the machine and the driver.

A ROUTER socket takes commands (every one answered with an ack, malformed ones with an error
ack that changes nothing); a PUB socket publishes events. One thread runs `step()` in a loop:
drain commands, poll the driver (non-blocking), tick the safety machine, apply its effects.
The loop waits at most `poll_interval_s` (5 ms) between driver polls, so a fire-alarm edge
reaches the outputs within a few milliseconds and a lost heartbeat is noticed on time.

Both sockets are CurveZMQ servers. A ZAP handler (pyzmq's ThreadAuthenticator, on the server's
own context) admits only the public keys of `ServerKeys.peers` and names each connection by its
role (`daemon` or `operator`); a client without an admitted key never completes the handshake,
so it reaches neither the decoder nor the lanes. Every command is attributed to the ZAP
User-Id of its frame, never to a field in it: the `operator` may only ask for `status`
(anything else is refused with `forbidden`), and a reset's or override's `actor` is logged as
the staff account the daemon sent it on behalf of. Bad frames are counted by error code (the
status ack's `info` shows the counts) and never end the loop.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
from collections import Counter
from pathlib import Path
from typing import IO

import structlog
import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from foundation.clock import Clock
from foundation.errors import ConsentGateError
from gate_controller.gateio import GateInput, GateIO
from gate_controller.keys import Role, ServerKeys
from gate_controller.safety import Effect, Emit, GateMachine, SetAlarm, SetOutput
from wire.gate import (
    COMMAND_NAMES,
    SOCKET_MAXMSGSIZE,
    Ack,
    FaultEvent,
    LaneState,
    PassageEvent,
    ProtocolError,
    StateEvent,
    StatusCmd,
    TailgatingEvent,
    decode_command,
    encode,
    error_ack,
    request_id_of,
)

log = structlog.get_logger(__name__)


class GateStartError(ConsentGateError):
    """The controller could not bind its sockets."""


def bind_private(sock: zmq.Socket[bytes], endpoint: str) -> IO[bytes] | None:
    """Bind `endpoint`; an ipc:// socket file is created owner-only (0600) in a 0700 folder.

    libzmq silently replaces an existing ipc socket file, so an ipc bind first takes an
    exclusive lock on `PATH.lock`; the returned lock file must stay open while bound.
    """
    advice = ("Is another gate controller running? Stop it or change the [gate] endpoints "
              "(command_endpoint, event_endpoint, sim_control_endpoint) in settings.")
    lock: IO[bytes] | None = None
    try:
        if endpoint.startswith("ipc://"):
            path = Path(endpoint[len("ipc://"):])
            if not path.parent.exists():
                path.parent.mkdir(parents=True, mode=0o700)
            old = os.umask(0o077)
            try:
                lock = open(f"{path}.lock", "ab")  # noqa: SIM115 - held while bound
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    lock.close()
                    raise GateStartError(f"{endpoint} is in use. {advice}") from None
                sock.bind(endpoint)
            finally:
                os.umask(old)
            os.chmod(path, 0o600)
        else:
            sock.bind(endpoint)
    except (zmq.ZMQError, OSError) as exc:
        if lock is not None:
            lock.close()
        if exc.errno != errno.EADDRINUSE:
            advice = ("Check that the socket's folder can be created and written by this "
                      "user, or change the [gate] endpoint in settings.")
        raise GateStartError(f"cannot bind {endpoint}: {exc}. {advice}") from None
    return lock


COMMAND_DOMAIN = "gate/1-commands"  # ZAP domains of the two sockets
EVENT_DOMAIN = "gate/1-events"
ALLOWED: dict[str, frozenset[str]] = {"daemon": frozenset(COMMAND_NAMES),  # role -> commands
                                      "operator": frozenset({"status"})}
BAD_FRAME_LOG_S = 10.0  # at most one bad-frame log line per this many seconds (plus the first)


class _Admission:
    """ZAP callback: a Curve client is admitted when its public key is one of the peers'."""

    def __init__(self, peers: dict[bytes, Role]) -> None:
        self.peers = dict(peers)
        self.refused = 0  # handshakes refused (a refused client retries, each try counts)

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.peers:
            return True
        self.refused += 1
        return False


class _GateAuthenticator(ThreadAuthenticator):
    """Names an admitted connection by its role: the User-Id of every frame it sends."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], peers: dict[bytes, Role]) -> None:
        super().__init__(context, log=logging.getLogger("gate_controller.zap"))
        self._roles = dict(peers)

    def curve_user_id(self, client_public_key: bytes) -> str:
        return self._roles.get(z85.encode(client_public_key), "unknown")


def _user_id(frame: zmq.Frame) -> str | None:
    try:
        value = frame.get("User-Id")
    except (zmq.ZMQError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) else None


class GateServer:
    """Serves one `GateMachine` over ZeroMQ and drives one `GateIO` from its effects.

    The sockets live on a private context (with its ZAP handler), closed by `shutdown`.
    """

    def __init__(self, machine: GateMachine, io: GateIO, clock: Clock, *,
                 command_endpoint: str, event_endpoint: str, keys: ServerKeys,
                 poll_interval_s: float = 0.005) -> None:
        self.machine = machine
        self.io = io
        self.clock = clock
        self.poll_interval_ms = max(1, int(poll_interval_s * 1000))
        self.refused: Counter[str] = Counter()  # error code -> frames refused before the machine
        self._next_bad_log = 0.0
        self._seq = 0
        self._ctx = zmq.Context()
        self._admission = _Admission(keys.peers)
        self._auth = _GateAuthenticator(self._ctx, keys.peers)
        self._auth.start()
        for domain in (COMMAND_DOMAIN, EVENT_DOMAIN):
            self._auth.configure_curve_callback(domain, credentials_provider=self._admission)
        self._router = self._ctx.socket(zmq.ROUTER)
        self._pub = self._ctx.socket(zmq.PUB)
        for s, domain in ((self._router, COMMAND_DOMAIN), (self._pub, EVENT_DOMAIN)):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.MAXMSGSIZE, SOCKET_MAXMSGSIZE)
            s.curve_server = True
            s.curve_publickey = keys.public
            s.curve_secretkey = keys.secret
            s.zap_domain = domain.encode()
        self._router.setsockopt(zmq.RCVHWM, 256)
        self._locks: list[IO[bytes]] = []
        try:
            for sock, endpoint in ((self._router, command_endpoint),
                                   (self._pub, event_endpoint)):
                lock = bind_private(sock, endpoint)
                if lock is not None:
                    self._locks.append(lock)
        except GateStartError:
            self._close_sockets()
            raise
        self.command_endpoint = command_endpoint
        self.event_endpoint = event_endpoint
        self._poller = zmq.Poller()
        self._poller.register(self._router, zmq.POLLIN)
        self._closed = False
        self._driver_error = False
        # the machine starts with every output closed; say so to the hardware
        for lane, open_ in machine.outputs().items():
            io.set_output(lane, open_)
            io.set_alarm(lane, False)
        log.info("gate_start", lanes=list(machine.lanes), command=command_endpoint,
                 events=event_endpoint, peers=sorted(set(keys.peers.values())))

    # ---- the loop ------------------------------------------------------------------------
    def serve_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.step()

    def step(self, timeout_ms: int | None = None) -> None:
        """One iteration: commands, driver inputs, time."""
        wait = self.poll_interval_ms if timeout_ms is None else timeout_ms
        if self._poller.poll(wait):
            for _ in range(64):  # bounded, so the driver is polled even under a flood
                try:
                    frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                self._handle_safely(frames)
        now = self.clock.monotonic()
        try:
            items = self.io.poll(now)
            if self._driver_error:  # the driver works again after raising
                self._driver_error = False
                items = [GateInput("restored"), *items]
        except Exception as exc:  # a driver bug must not kill the process that keeps gates safe
            if not self._driver_error:
                log.exception("gate_driver_error", error=type(exc).__name__)
            self._driver_error = True
            items = [GateInput("fault", reason=f"driver error: {type(exc).__name__}")]
        for item in items:
            self._apply(self._input(item, now))
        self._apply(self.machine.tick(self.clock.monotonic()))

    def _input(self, item: GateInput, now: float) -> list[Effect]:
        if item.kind == "passage" and item.lane is not None:
            return self.machine.passage(item.lane, now)
        if item.kind == "fire_alarm":
            log.warning("gate_fire_alarm", active=item.active)
            return self.machine.fire_alarm_input(item.active, now)
        if item.kind == "fault":
            return self.machine.io_fault(item.reason or "gate I/O failed", now)
        if item.kind == "restored":
            effects = self.machine.io_restored(now)
            # the hardware may have lost its outputs: re-assert the wanted ones
            for lane, open_ in self.machine.outputs().items():
                self.io.set_output(lane, open_)
            for lane, on in self.machine.alarms().items():
                self.io.set_alarm(lane, on)
            return effects
        return []

    # ---- commands ------------------------------------------------------------------------
    def link_info(self) -> dict[str, str]:
        """The link's health for the status ack: refused frames by code, refused handshakes."""
        codes = ",".join(f"{code}={n}" for code, n in sorted(self.refused.items()))
        return {"bad_frames": str(sum(self.refused.values())), "bad_frame_codes": codes or "none",
                "refused_handshakes": str(self._admission.refused)}

    def _refuse(self, code: str, peer: str | None, cmd: str | None = None) -> None:
        """Count a frame refused before the machine; log it, at most once per 10 s."""
        self.refused[code] += 1
        now = self.clock.monotonic()
        if now >= self._next_bad_log:
            self._next_bad_log = now + BAD_FRAME_LOG_S
            log.warning("gate_bad_frames", code=code, peer=peer, cmd=cmd,
                        total=sum(self.refused.values()), counts=dict(self.refused))

    def _handle_safely(self, frames: list[zmq.Frame]) -> None:
        """`_handle`, but a bug on one frame is an `internal` error ack, never a dead loop."""
        try:
            self._handle(frames)
        except Exception as exc:
            log.exception("gate_frame_failed", error=type(exc).__name__)
            self._refuse("internal", None)
            with contextlib.suppress(Exception):
                body = frames[1:]
                envelope = [b""] if len(body) == 2 and body[0].bytes == b"" else []
                ack = error_ack(ProtocolError("the controller failed on this frame (see its "
                                              "log) and keeps running; check the lane state "
                                              "before resending", "internal"),
                                request_id_of(body[-1].bytes) if body else None)
                self._router.send_multipart([frames[0].bytes, *envelope, encode(ack)])

    def _handle(self, frames: list[zmq.Frame]) -> None:
        identity, body = frames[0].bytes, frames[1:]
        peer = _user_id(body[-1]) if body else None
        envelope: list[bytes] = []
        if len(body) == 2 and body[0].bytes == b"":  # a REQ peer
            envelope, body = [b""], body[1:]
        if len(body) != 1:
            self._refuse("malformed", peer)
            ack = error_ack(ProtocolError("expected one frame per command"))
            self._router.send_multipart([identity, *envelope, encode(ack)])
            return
        data = body[0].bytes
        try:
            cmd = decode_command(data)
        except ProtocolError as exc:
            self._refuse(exc.code, peer)
            ack = error_ack(exc, request_id_of(data))
            self._router.send_multipart([identity, *envelope, encode(ack)])
            return
        allowed = ALLOWED.get(peer or "", frozenset())
        if cmd.cmd not in allowed:
            self._refuse("forbidden", peer, cmd.cmd)
            ack = Ack(id=cmd.id, cmd=cmd.cmd, ok=False, code="forbidden",
                      error=f"the {peer or 'unknown'} key may not send {cmd.cmd!r}; it may "
                            f"send: {', '.join(sorted(allowed)) or 'nothing'}")
            self._router.send_multipart([identity, *envelope, encode(ack)])
            return
        now = self.clock.monotonic()
        if cmd.deadline is not None and now > cmd.deadline:
            self._refuse("expired", peer, cmd.cmd)
            log.warning("gate_expired_command", cmd=cmd.cmd, late_ms=int((now - cmd.deadline)
                                                                          * 1000))
            ack = Ack(id=cmd.id, cmd=cmd.cmd, ok=False, code="expired",
                      error="command arrived after its deadline; the sender gave up: resend")
            self._router.send_multipart([identity, *envelope, encode(ack)])
            return
        ack, effects = self.machine.command(cmd, now, peer=peer)
        self._apply(effects)
        if isinstance(cmd, StatusCmd) and ack.ok:
            ack = ack.model_copy(update={"info": {**(ack.info or {}), **self.link_info()}})
        if cmd.cmd != "heartbeat" and cmd.cmd != "status":
            log.info("gate_command", cmd=cmd.cmd, lane=getattr(cmd, "lane", None), ok=ack.ok,
                     code=ack.code, peer=peer, on_behalf_of=getattr(cmd, "actor", None))
        self._router.send_multipart([identity, *envelope, encode(ack)])

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, SetOutput):
                self.io.set_output(effect.lane, effect.open)
            elif isinstance(effect, SetAlarm):
                self.io.set_alarm(effect.lane, effect.on)
            elif isinstance(effect, Emit):
                self.publish(effect.event)

    def publish(self, event: PassageEvent | TailgatingEvent | StateEvent | FaultEvent) -> None:
        self._seq += 1
        stamped = event.model_copy(update={"seq": self._seq, "ts": self.clock.now()})
        self._log_event(stamped)
        with contextlib.suppress(zmq.Again):
            self._pub.send(encode(stamped), zmq.NOBLOCK)

    @staticmethod
    def _log_event(event: PassageEvent | TailgatingEvent | StateEvent | FaultEvent) -> None:
        if isinstance(event, StateEvent):
            log.info("gate_state", lane=event.lane, state=event.state.value, reason=event.reason)
        elif isinstance(event, TailgatingEvent):
            log.warning("gate_tailgating", lane=event.lane, grant_id=event.grant_id)
        elif isinstance(event, PassageEvent):
            log.info("gate_passage", lane=event.lane, grant_id=event.grant_id)
        else:
            log.warning("gate_fault", active=event.active, reason=event.reason)

    # ---- shutdown ------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Leave the gates safe and close: leaves closed, unless a fire alarm holds them open."""
        if self._closed:
            return
        self._closed = True
        for lane, state in self.machine.snapshot().items():
            if state != LaneState.EMERGENCY_OPEN:
                self.io.set_output(lane, False)
                self.io.set_alarm(lane, False)
                self.publish(StateEvent(lane=lane, state=LaneState.MANUAL,
                                        reason="controller stopping: staff operate the gate"))
        with contextlib.suppress(Exception):
            self.io.poll(self.clock.monotonic())  # flush queued writes
        self.io.close()
        self._close_sockets()
        log.info("gate_stop", lanes=list(self.machine.lanes))

    def _close_sockets(self) -> None:
        self._router.close()
        self._pub.close()
        for lock in self._locks:
            lock.close()
        self._auth.stop()
        self._ctx.term()
