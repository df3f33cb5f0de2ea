"""The daemon's (and the kiosk's) handle on the gate controller: commands with acks, and events.

Commands go over a DEALER socket with `ZMQ_IMMEDIATE` (nothing is queued for a controller that
is not connected) and a fresh request id each; the ack with that id is awaited for `timeout_ms`.
No ack in time -> `GateUnavailableError`, and the socket is rebuilt so that an old command can
never be delivered late (the lazy-pirate pattern); each command also carries its deadline
(CLOCK_MONOTONIC, same box), after which the controller refuses it with code `expired`, so a
command already queued at the controller is not acted on after the caller gave up on it. The
caller then treats the lanes as manual.
A refused command is not an exception: the returned `Ack` has `ok=False`, a `code` and `error`.
Invalid arguments (a lane name with spaces, a TTL out of range) raise `ProtocolError` before
anything is sent.

Both sockets are CurveZMQ clients with the keys of one role (`ClientKeys`: the daemon's for
every command, the operator's for `status` only); `GateClient.from_settings` loads them from the
[gate] key files. Without the controller's admission the handshake never completes, so a
command is `GateUnavailableError` ("was not connected"), never an unauthenticated send.

Thread safety: commands are serialised by one lock and `next_event` by another, so one client
may be shared by a heartbeat thread and a decision thread; the two sockets are never shared.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from typing import Any, Literal

import structlog
import zmq
from pydantic import ValidationError

from foundation.errors import ConsentGateError
from foundation.settings import GateSettings
from gate_controller.keys import ClientKeys, Role, client_keys
from wire.gate import (
    SOCKET_MAXMSGSIZE,
    Ack,
    Command,
    DenyCmd,
    Event,
    HeartbeatCmd,
    OpenCmd,
    OverrideCmd,
    ProtocolError,
    ResetCmd,
    StatusCmd,
    decode_ack,
    decode_event,
    encode,
)

log = structlog.get_logger(__name__)


class GateUnavailableError(ConsentGateError):
    """The gate controller did not acknowledge in time (lanes must be treated as manual)."""


def _make(cls: type[Command], **fields: Any) -> Command:
    """Build a command; bad arguments are a ProtocolError (as the controller would answer)."""
    try:
        return cls.model_validate(fields)
    except ValidationError as exc:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ProtocolError(f"bad {cls.__name__} arguments: {detail}") from None


class GateClient:
    """Talks gate/1 to one controller. Usable from several threads (see module docstring)."""

    def __init__(self, command_endpoint: str, event_endpoint: str, timeout_ms: int = 1000,
                 context: zmq.Context[zmq.Socket[bytes]] | None = None, subscribe: bool = True,
                 *, keys: ClientKeys) -> None:
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        self.command_endpoint = command_endpoint
        self.event_endpoint = event_endpoint
        self.timeout_ms = timeout_ms
        self.keys = keys
        self._ctx = context or zmq.Context.instance()
        self._cmd_lock = threading.Lock()
        self._event_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()
        self._dealer: zmq.Socket[bytes] | None = None
        self._sub: zmq.Socket[bytes] | None = None
        if subscribe:
            self._sub = self._curve(self._ctx.socket(zmq.SUB))
            self._sub.setsockopt(zmq.SUBSCRIBE, b"")
            self._sub.connect(event_endpoint)
        self._closed = False

    @classmethod
    def from_settings(cls, gs: GateSettings, role: Role = "daemon", *,
                      timeout_ms: int | None = None, subscribe: bool = True,
                      context: zmq.Context[zmq.Socket[bytes]] | None = None) -> GateClient:
        """A client of the controller the [gate] settings name, with `role`'s key files
        (GateKeyError, saying how to make them, when one is missing)."""
        return cls(gs.command_endpoint, gs.event_endpoint,
                   gs.command_timeout_ms if timeout_ms is None else timeout_ms, context,
                   subscribe, keys=client_keys(gs, role))

    def _curve(self, sock: zmq.Socket[bytes]) -> zmq.Socket[bytes]:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, SOCKET_MAXMSGSIZE)
        sock.curve_serverkey = self.keys.server
        sock.curve_publickey = self.keys.public
        sock.curve_secretkey = self.keys.secret
        return sock

    # ---- commands ------------------------------------------------------------------------
    def open(self, lane: str, grant_id: str, ttl_ms: int) -> Ack:
        return self._request(_make(OpenCmd, lane=lane, grant_id=grant_id, ttl_ms=ttl_ms))

    def deny(self, lane: str) -> Ack:
        return self._request(_make(DenyCmd, lane=lane))

    def reset(self, lane: str, reason: str, actor: str) -> Ack:
        return self._request(_make(ResetCmd, lane=lane, reason=reason, actor=actor))

    def override(self, lane: str, action: Literal["open", "close"], reason: str,
                 actor: str) -> Ack:
        return self._request(_make(OverrideCmd, lane=lane, action=action, reason=reason,
                                   actor=actor))

    def heartbeat(self) -> Ack:
        return self._request(HeartbeatCmd())

    def status(self) -> dict[str, str]:
        """lane -> state (e.g. {'A': 'closed'}); does not count as a heartbeat."""
        ack = self.status_detail()
        return {lane: state.value for lane, state in (ack.lanes or {}).items()}

    def answers(self) -> bool:
        """Whether the controller answers a status request now (a readiness probe)."""
        try:
            self.status()
        except GateUnavailableError:
            return False
        return True

    def status_detail(self) -> Ack:
        """The full status ack: `lanes` plus `info` (fire alarm, I/O, daemon heartbeat)."""
        ack = self._request(StatusCmd())
        if not ack.ok or ack.lanes is None:
            raise ProtocolError(f"status refused: {ack.error or 'no lanes in the ack'}")
        return ack

    def _socket(self) -> zmq.Socket[bytes]:
        if self._closed:
            raise GateUnavailableError("this GateClient is closed; create a new one")
        if self._dealer is None:
            s = self._curve(self._ctx.socket(zmq.DEALER))
            s.setsockopt(zmq.IMMEDIATE, 1)
            s.connect(self.command_endpoint)
            self._dealer = s
        return self._dealer

    def _drop_socket(self) -> None:
        if self._dealer is not None:
            self._dealer.close(linger=0)
            self._dealer = None

    def _unavailable(self, what: str) -> GateUnavailableError:
        self._drop_socket()
        return GateUnavailableError(
            f"gate controller at {self.command_endpoint} {what} within {self.timeout_ms} ms; "
            "treat the lanes as manual and check `python -m gate_controller status` (a "
            f"controller that does not admit this {self.keys.role} key never connects)")

    def _request(self, cmd: Command) -> Ack:
        with self._cmd_lock:
            rid = f"{self._prefix}-{next(self._ids)}"
            deadline = time.monotonic() + self.timeout_ms / 1000.0
            payload = encode(cmd.model_copy(update={"id": rid, "deadline": deadline}))
            sock = self._socket()
            if not sock.poll(self.timeout_ms, zmq.POLLOUT):
                raise self._unavailable("was not connected")
            try:
                sock.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                raise self._unavailable("was not connected") from None
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sock.poll(math.ceil(remaining * 1000), zmq.POLLIN):
                    # give up only once the deadline has passed: from then on the controller
                    # refuses the command if it has not acted on it yet
                    while (late := deadline - time.monotonic()) >= 0:
                        time.sleep(late + 0.0005)
                    raise self._unavailable("did not acknowledge")
                data = sock.recv()
                try:
                    ack = decode_ack(data)
                except ProtocolError as exc:
                    log.warning("gate_client_bad_ack", code=exc.code)
                    continue
                if ack.id == rid:
                    return ack
                # a late ack of an earlier, timed-out request: drop it

    # ---- events --------------------------------------------------------------------------
    def next_event(self, timeout_ms: int) -> Event | None:
        """The next event from the controller's PUB socket, or None after `timeout_ms`."""
        if self._sub is None:
            raise ValueError("this GateClient was made with subscribe=False")
        with self._event_lock:
            deadline = time.monotonic() + max(0, timeout_ms) / 1000.0
            while True:
                remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
                if not self._sub.poll(remaining_ms, zmq.POLLIN):
                    return None
                data = self._sub.recv()
                try:
                    return decode_event(data)
                except ProtocolError as exc:
                    log.warning("gate_client_bad_event", code=exc.code)
                    if remaining_ms == 0:
                        return None

    def close(self) -> None:
        with self._cmd_lock:
            self._drop_socket()
            self._closed = True
        with self._event_lock:
            if self._sub is not None:
                self._sub.close(linger=0)
                self._sub = None

    def __enter__(self) -> GateClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
