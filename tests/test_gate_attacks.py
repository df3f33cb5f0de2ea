"""Issue 13's attacks on the gate command socket, each against the real GateServer on loopback.

The attacker is a process on the box: it can reach the loopback ports (free ports here, never
a default one) and knows the controller's public key, but holds neither the daemon's secret
key nor the operator's. Before the fix one 2 KB frame killed the controller, any process could
open a lane, spoof the daemon's heartbeat or cancel its grant, big frames went unanswered,
lax types were taken, and a used grant came back after 4,096 newer ones.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq
from structlog.testing import capture_logs

from foundation.clock import SystemClock
from foundation.peers import free_ports
from foundation.settings import GateSettings
from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.drivers.simulated import SimulatedGateIO
from gate_controller.keys import ClientKeys, GateKeyError, client_keys, create_gate_keys
from gate_controller.keys import server_keys as load_server_keys
from gate_controller.safety import GateMachine
from gate_controller.server import GateServer
from wire.gate import (
    MAX_FRAME_BYTES,
    MAX_MESSAGE_BYTES,
    LaneState,
    PassageEvent,
    StateEvent,
    new_grant_id,
)

NO_ANSWER_MS = 700


@dataclass
class Gate:
    gs: GateSettings
    server: GateServer
    io: SimulatedGateIO
    ctx: zmq.Context

    def daemon(self, subscribe: bool = False) -> GateClient:
        return GateClient.from_settings(self.gs, "daemon", timeout_ms=1000, subscribe=subscribe,
                                        context=self.ctx)

    def operator(self) -> GateClient:
        return GateClient.from_settings(self.gs, "operator", timeout_ms=1000, subscribe=False,
                                        context=self.ctx)

    def raw(self, who: str) -> zmq.Socket:
        """A DEALER on the command port: `daemon`/`operator` keys, a `stranger`'s, or `none`."""
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if who != "none":
            if who == "stranger":
                public, secret = zmq.curve_keypair()
                keys = ClientKeys(public, secret, client_keys(self.gs).server, "daemon")
            else:
                keys = client_keys(self.gs, who)  # type: ignore[arg-type]
            s.curve_serverkey, s.curve_publickey, s.curve_secretkey = (
                keys.server, keys.public, keys.secret)
        s.connect(self.gs.command_endpoint)
        return s

    def info(self) -> dict[str, str]:
        with self.operator() as op:
            return op.status_detail().info or {}

    def lane(self) -> LaneState:
        with self.operator() as op:
            return LaneState(op.status()["A"])


@pytest.fixture
def gate() -> Iterator[Gate]:
    d = Path(tempfile.mkdtemp(prefix="ga"))
    cmd, ev = free_ports(2)
    gs = GateSettings(command_endpoint=f"tcp://127.0.0.1:{cmd}",
                      event_endpoint=f"tcp://127.0.0.1:{ev}", **create_gate_keys(d / "keys"))
    io = SimulatedGateIO(["A"])
    server = GateServer(GateMachine(["A"], heartbeat_timeout_s=0.5), io, SystemClock(),
                        command_endpoint=gs.command_endpoint, event_endpoint=gs.event_endpoint,
                        keys=load_server_keys(gs))
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(stop,), daemon=True)
    thread.start()
    ctx = zmq.Context()
    try:
        yield Gate(gs, server, io, ctx)
        assert thread.is_alive(), "the controller's loop ended"
        assert server.refused["internal"] == 0, "a frame crashed the handler"
    finally:
        stop.set()
        thread.join(3)
        server.shutdown()
        ctx.destroy(linger=0)
        shutil.rmtree(d, ignore_errors=True)


def ask(sock: zmq.Socket, *frames: bytes, timeout_ms: int = 2000) -> dict | None:
    """Send one message; the decoded reply, or None when nothing came back in time (a socket
    whose handshake was refused cannot even send: nothing was ever connected)."""
    if not sock.poll(timeout_ms, zmq.POLLOUT):
        return None
    try:
        sock.send_multipart(list(frames), zmq.NOBLOCK)
    except zmq.Again:
        return None
    if not sock.poll(timeout_ms):
        return None
    return json.loads(sock.recv_multipart()[-1])


def command(**fields: object) -> bytes:
    return json.dumps({"schema": "gate/1", "kind": "command", **fields}).encode()


def beat_until(gate: Gate, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        with gate.daemon() as c:
            while not stop.is_set():
                c.heartbeat()
                stop.wait(0.1)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# -- 1. one frame must not kill the controller -------------------------------------------------
def test_nested_json_frame_does_not_kill_the_controller(gate: Gate) -> None:
    frame = b"[" * 1000 + b"]" * 1000  # the 2 KB frame of the report
    nested_field = command(cmd="heartbeat", x=json.loads("[" * 500 + "]" * 500))
    with gate.daemon() as daemon:
        sock = gate.raw("daemon")
        try:
            for data in (frame, frame, frame, nested_field, b"{" * 2048):
                reply = ask(sock, data)
                assert reply is not None and reply["ok"] is False
                assert reply["code"] in ("too_deep", "malformed")
        finally:
            sock.close()
        assert daemon.heartbeat().ok  # the controller answers, the lane is automatic
        assert gate.lane() == LaneState.CLOSED
    info = gate.info()
    assert info["bad_frames"] == "5" and "too_deep=" in info["bad_frame_codes"]


# -- 2. no key, no commands --------------------------------------------------------------------
@pytest.mark.parametrize("who", ["none", "stranger"])
def test_unauthenticated_override_opens_nothing(gate: Gate, who: str) -> None:
    assert gate.lane() == LaneState.MANUAL  # no daemon: the case of the report
    sock = gate.raw(who)
    try:
        for _ in range(3):
            reply = ask(sock, command(id="x", cmd="override", lane="A", action="open",
                                      reason="let me in", actor="supervisor"),
                        timeout_ms=NO_ANSWER_MS)
            assert reply is None  # not even an error: the handshake never completed
    finally:
        sock.close()
    assert gate.io.outputs() == {"A": False} and gate.lane() == LaneState.MANUAL
    info = gate.info()
    assert info["bad_frames"] == "0"  # nothing of theirs reached the decoder
    if who == "stranger":
        assert int(info["refused_handshakes"]) >= 1


def test_a_client_without_the_daemon_key_cannot_connect(gate: Gate, tmp_path: Path) -> None:
    bad = gate.gs.model_copy(update={"daemon_secret_key_file": tmp_path / "none.key_secret"})
    with pytest.raises(GateKeyError, match="rotate-gate-keys"):
        GateClient.from_settings(bad)
    public, secret = zmq.curve_keypair()
    stranger = GateClient(gate.gs.command_endpoint, gate.gs.event_endpoint, 300,
                          context=gate.ctx, subscribe=False,
                          keys=ClientKeys(public, secret, client_keys(gate.gs).server,
                                          "daemon"))
    with stranger, pytest.raises(GateUnavailableError, match="not connected"):
        stranger.override("A", "open", "r", "sup1")
    assert gate.io.outputs() == {"A": False}


def test_the_operator_key_may_only_ask_for_status(gate: Gate) -> None:
    with gate.operator() as op:
        for ack in (op.override("A", "open", "r", "sup1"), op.heartbeat(),
                    op.open("A", new_grant_id(time.monotonic()), 5000), op.deny("A"),
                    op.reset("A", "r", "sup1")):
            assert not ack.ok and ack.code == "forbidden"
        assert op.status() == {"A": "manual"}  # no heartbeat counted, nothing opened
    assert gate.io.outputs() == {"A": False}
    assert "forbidden=5" in gate.info()["bad_frame_codes"]


# -- 3. spoofed heartbeats ---------------------------------------------------------------------
def test_spoofed_heartbeat_is_ignored(gate: Gate) -> None:
    with gate.daemon() as daemon:
        assert daemon.heartbeat().ok
    assert gate.lane() == LaneState.CLOSED
    gone = time.monotonic()  # the daemon is gone; three attackers keep "beating"
    socks = [gate.raw(who) for who in ("none", "stranger", "operator")]
    try:
        while time.monotonic() - gone < 1.2:
            for s in socks:
                with contextlib.suppress(zmq.Again):
                    s.send(command(cmd="heartbeat"), zmq.NOBLOCK)
            time.sleep(0.05)
        assert gate.lane() == LaneState.MANUAL  # within the 0.5 s timeout, spoofing or not
        assert gate.server.machine.last_heartbeat is not None
        assert gate.server.machine.last_heartbeat <= gone + 0.01
    finally:
        for s in socks:
            s.close()


# -- 4. a forged deny --------------------------------------------------------------------------
def test_unauthenticated_deny_cannot_cancel_a_grant(gate: Gate) -> None:
    stop = threading.Event()
    beat = beat_until(gate, stop)
    try:
        with gate.daemon(subscribe=True) as daemon:
            daemon.heartbeat()
            grant = new_grant_id(time.monotonic())
            assert daemon.open("A", grant, 10_000).ok
            for who in ("none", "stranger"):
                s = gate.raw(who)
                assert ask(s, command(cmd="deny", lane="A"), timeout_ms=NO_ANSWER_MS) is None
                s.close()
            with gate.operator() as op:
                assert op.deny("A").code == "forbidden"
            assert gate.lane() == LaneState.OPEN and gate.io.outputs() == {"A": True}
            gate.io.walk_through("A")  # the traveller still boards on the daemon's grant
            end = time.monotonic() + 3
            while True:
                event = daemon.next_event(200)
                if isinstance(event, PassageEvent):
                    assert event.grant_id == grant
                    break
                assert time.monotonic() < end, "no passage event"
    finally:
        stop.set()
        beat.join(2)


# -- 5. big frames -----------------------------------------------------------------------------
def test_oversized_frame_gets_too_large(gate: Gate) -> None:
    sock = gate.raw("daemon")
    try:
        for size in (MAX_MESSAGE_BYTES + 1, 4352, 4353, 8192, 32_768, MAX_FRAME_BYTES):
            pad = b'{"schema":"gate/1","kind":"command","id":"big","cmd":"heartbeat","pad":"'
            data = pad + b"x" * (size - len(pad) - 2) + b'"}'
            assert len(data) == size
            reply = ask(sock, data)
            assert reply is not None, f"no answer to a {size}-byte frame"
            assert reply["code"] == "too_large" and reply["ok"] is False
        # past MAX_FRAME_BYTES libzmq drops the frame and that connection (documented)
        assert ask(sock, b"x" * (MAX_FRAME_BYTES + 8192), timeout_ms=NO_ANSWER_MS) is None
    finally:
        sock.close()
    with gate.daemon() as daemon:
        assert daemon.heartbeat().ok  # everyone else is served as before
    assert gate.server.machine.last_heartbeat is not None


# -- 6. lax types ------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    command(cmd="open", lane="A", grant_id="GRANT", ttl_ms="8000"),
    command(cmd="open", lane="A", grant_id="GRANT", ttl_ms=True),
    command(cmd="open", lane="A", grant_id="GRANT", ttl_ms=8000.0),
    command(cmd="open", lane="A", grant_id="GRANT", ttl_ms=8000, deadline="1e9"),
    b'{"schema":"gate/1","kind":"command","cmd":"open","lane":"A","grant_id":"GRANT",'
    b'"ttl_ms":8000,"deadline":Infinity}',
    b'{"schema":"gate/1","kind":"command","cmd":"open","lane":"A","grant_id":"GRANT",'
    b'"ttl_ms":8000,"deadline":NaN}',
    b'{"schema":"gate/1","kind":"command","cmd":"open","lane":"A","grant_id":"GRANT",'
    b'"ttl_ms":8000,"deadline":1e999}',
    command(cmd="open", lane="A", grant_id="GRANT", ttl_ms=8000, on_behalf_of="x"),
], ids=["ttl-string", "ttl-bool", "ttl-float", "deadline-string", "deadline-inf",
        "deadline-nan", "deadline-overflow", "unknown-field"])
def test_string_ttl_and_infinite_deadline_are_refused(gate: Gate, data: bytes) -> None:
    stop = threading.Event()
    beat = beat_until(gate, stop)
    try:
        deadline = time.monotonic() + 2
        while gate.lane() != LaneState.CLOSED:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        sock = gate.raw("daemon")
        try:
            frame = data.replace(b"GRANT", new_grant_id(time.monotonic()).encode())
            reply = ask(sock, frame)
            assert reply is not None and reply["ok"] is False and reply["code"] == "malformed"
        finally:
            sock.close()
        assert gate.lane() == LaneState.CLOSED and gate.io.outputs() == {"A": False}
    finally:
        stop.set()
        beat.join(2)


# -- 7. grant replay ---------------------------------------------------------------------------
def test_used_grant_never_reopens_after_many_newer_grants(gate: Gate) -> None:
    used = new_grant_id(time.monotonic())
    sock = gate.raw("daemon")
    try:
        assert ask(sock, command(cmd="heartbeat"))["ok"]
        assert ask(sock, command(cmd="open", lane="A", grant_id=used, ttl_ms=5000))["ok"]
        gate.io.walk_through("A")
        end = time.monotonic() + 2
        while gate.io.outputs()["A"]:
            assert time.monotonic() < end
            time.sleep(0.005)
        newer, batch = 5000, 250  # more than the old 4,096-entry memory
        sent = 0
        while sent < newer:
            frames = [command(cmd="heartbeat")]
            for _ in range(batch // 2):
                g = new_grant_id(time.monotonic())
                frames += [command(cmd="open", lane="A", grant_id=g, ttl_ms=5000),
                           command(cmd="deny", lane="A")]  # deny cancels: the grant is used
                sent += 1
            for f in frames:
                sock.send(f)
            replies = []
            for _ in frames:
                assert sock.poll(5000), "an ack went missing"
                replies.append(json.loads(sock.recv()))
            assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]][:2]
        assert int(gate.info()["used_grants_held"]) >= newer + 1  # held by age, not by count
        assert ask(sock, command(cmd="heartbeat"))["ok"]
        replay = ask(sock, command(cmd="open", lane="A", grant_id=used, ttl_ms=5000))
        assert replay is not None and replay["ok"] is False and replay["code"] == "grant_used"
        assert gate.io.outputs() == {"A": False}
    finally:
        sock.close()


def test_a_stale_grant_is_refused_however_it_was_kept(gate: Gate) -> None:
    stop = threading.Event()
    beat = beat_until(gate, stop)
    try:
        with gate.daemon() as daemon:
            daemon.heartbeat()
            old = new_grant_id(time.monotonic() - 10)  # issued 10 s ago, ttl 5 s
            ack = daemon.open("A", old, 5000)
            assert not ack.ok and ack.code == "grant_stale"
            assert gate.io.outputs() == {"A": False}
    finally:
        stop.set()
        beat.join(2)


# -- attribution and counting ------------------------------------------------------------------
def test_commands_are_attributed_to_the_authenticated_peer(gate: Gate) -> None:
    with gate.daemon(subscribe=True) as daemon:
        time.sleep(0.2)  # the subscription settles
        with capture_logs() as logs:
            assert daemon.override("A", "open", "wheelchair", "sup1").ok
            time.sleep(0.05)
        [entry] = [e for e in logs if e["event"] == "gate_command"]
        assert entry["peer"] == "daemon" and entry["on_behalf_of"] == "sup1"
        end = time.monotonic() + 2
        while True:
            event = daemon.next_event(200)
            if isinstance(event, StateEvent) and event.state == LaneState.OPEN:
                assert event.reason == "override open by sup1 (via daemon)"
                break
            assert time.monotonic() < end


def test_random_frames_from_the_daemon_never_stop_the_server(gate: Gate) -> None:
    rng = random.Random(13)
    sock = gate.raw("daemon")
    try:
        for i in range(400):
            kind = i % 4
            if kind == 0:
                data = rng.randbytes(rng.randrange(0, 300))
            elif kind == 1:
                depth = rng.randrange(1, 3000)
                data = (rng.choice(["[", '{"a":']) * depth).encode()
            elif kind == 2:
                data = command(cmd=rng.choice(["open", "deny", "reset", "override", "x"]),
                               lane=rng.choice(["A", "", "A B", 7, None]),
                               ttl_ms=rng.choice(["1", True, -1, 10**30, 500]))
            else:
                data = command(cmd="status", id="ok")[: rng.randrange(1, 60)]
            reply = ask(sock, data)
            assert reply is not None and reply["kind"] == "ack"
    finally:
        sock.close()
    assert gate.lane() in (LaneState.MANUAL, LaneState.CLOSED)
    assert int(gate.info()["bad_frames"]) >= 300


def test_sim_control_survives_nested_and_bad_requests() -> None:
    from gate_controller.drivers.sim_control import SimulatorControl, send

    sim = SimulatedGateIO(["A"])
    (port,) = free_ports(1)
    endpoint = f"tcp://127.0.0.1:{port}"
    control = SimulatorControl(sim, endpoint)
    ctx = zmq.Context()
    try:
        for data in (b"[" * 3000, b'{"schema": "gate-sim/1", "sim": NaN}', b"\xff", b"x" * 5000):
            s = ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
            s.send(data)
            assert s.poll(2000)
            assert json.loads(s.recv())["ok"] is False
            s.close()
        assert send(endpoint, {"sim": "show"})["ok"]  # the control thread is still there
    finally:
        ctx.destroy(linger=0)
        control.close()
