"""The gate server and client over real ZeroMQ sockets (ipc in a private temp dir, in-process).

Every command gets an ack; malformed ones an error ack that changes nothing; a missing or
stalled controller is a GateUnavailableError; ipc sockets are owner-only. Both sides hold gate
keys made in a temp folder (CurveZMQ; the attacks without them are in test_gate_attacks.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
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
from foundation.settings import GateSettings
from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.drivers.simulated import SimulatedGateIO
from gate_controller.keys import ClientKeys, ServerKeys, client_keys, create_gate_keys, server_keys
from gate_controller.safety import GateMachine
from gate_controller.server import GateServer, GateStartError
from wire.gate import LaneState, StateEvent, decode_ack, new_grant_id


@pytest.fixture
def sockdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="gt", dir="/tmp"))  # ipc paths must stay short
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def keyed() -> Iterator[GateSettings]:
    """[gate] settings naming three fresh keypairs in a temp folder."""
    d = Path(tempfile.mkdtemp(prefix="gk"))
    yield GateSettings(**create_gate_keys(d))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def skeys(keyed: GateSettings) -> ServerKeys:
    return server_keys(keyed)


@pytest.fixture
def ckeys(keyed: GateSettings) -> ClientKeys:
    return client_keys(keyed, "daemon")


def grant() -> str:
    return new_grant_id(time.monotonic())


def curve(sock: zmq.Socket, keys: ClientKeys) -> zmq.Socket:
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (
        keys.server, keys.public, keys.secret)
    return sock


@dataclass
class Running:
    server: GateServer
    io: SimulatedGateIO
    cmd: str
    ev: str
    stop: threading.Event
    thread: threading.Thread
    keys: ClientKeys

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(3)


@pytest.fixture
def running(ctx: zmq.Context, sockdir: Path, skeys: ServerKeys,
            ckeys: ClientKeys) -> Iterator[Running]:
    io = SimulatedGateIO(["A", "B"])
    cmd, ev = f"ipc://{sockdir}/run/cmd.sock", f"ipc://{sockdir}/run/ev.sock"
    server = GateServer(GateMachine(["A", "B"], heartbeat_timeout_s=0.5), io, SystemClock(),
                        command_endpoint=cmd, event_endpoint=ev, keys=skeys)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(stop,), daemon=True)
    thread.start()
    r = Running(server, io, cmd, ev, stop, thread, ckeys)
    yield r
    r.halt()
    server.shutdown()


def client(r: Running, ctx: zmq.Context, timeout_ms: int = 1000) -> GateClient:
    return GateClient(r.cmd, r.ev, timeout_ms, context=ctx, keys=r.keys)


def wait_for(pred, timeout: float = 2.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.005)


def test_commands_events_and_outputs(running: Running, ctx: zmq.Context) -> None:
    c = client(running, ctx)
    try:
        assert c.status() == {"A": "manual", "B": "manual"}
        ack = c.heartbeat()
        assert ack.ok and ack.lanes == {"A": LaneState.CLOSED, "B": LaneState.CLOSED}
        g1 = grant()
        ack = c.open("A", g1, 5000)
        assert ack.ok and ack.state == LaneState.OPEN
        assert running.io.outputs() == {"A": True, "B": False}
        ack = c.open("B", g1, 5000)  # one grant never opens two lanes
        assert not ack.ok and ack.code == "grant_in_use"
        running.io.walk_through("A")
        wait_for(lambda: not running.io.outputs()["A"])
        ack = c.open("A", g1, 5000)
        assert not ack.ok and ack.code == "grant_used"
        events = []
        while (e := c.next_event(300)) is not None:
            events.append(e)
        names = [(e.event, getattr(e, "lane", None)) for e in events]
        assert ("passage", "A") in names
        seqs = [e.seq for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        ack = c.override("B", "close", "queue cleared", "sup1")
        assert ack.ok and ack.state == LaneState.CLOSED
        assert c.reset("A", "checked", "sup1").ok
        ack = c.deny("Z")
        assert not ack.ok and ack.code == "unknown_lane"
        detail = c.status_detail()
        assert detail.info is not None and detail.info["daemon"] == "alive"
        assert detail.info["bad_frames"] == "0" and detail.info["used_grants_held"] == "1"
    finally:
        c.close()


def test_no_heartbeat_goes_manual(running: Running, ctx: zmq.Context) -> None:
    c = client(running, ctx)
    try:
        c.heartbeat()
        t0 = time.monotonic()
        while True:
            e = c.next_event(2000)
            assert e is not None, "no manual state event"
            if isinstance(e, StateEvent) and e.state == LaneState.MANUAL:
                break
        elapsed = time.monotonic() - t0
        assert 0.4 < elapsed < 1.0  # heartbeat_timeout_s=0.5 here
    finally:
        c.close()


def raw_request(endpoint: str, ctx: zmq.Context, frames: list[bytes],
                keys: ClientKeys) -> dict:
    s = curve(ctx.socket(zmq.DEALER), keys)
    try:
        s.connect(endpoint)
        s.send_multipart(frames)
        assert s.poll(2000), "no answer to a malformed message"
        reply = s.recv_multipart()
        return json.loads(reply[-1])
    finally:
        s.close()


@pytest.mark.parametrize("frames", [
    [b"garbage"],
    [b'{"schema": "gate/7", "kind": "command", "cmd": "open"}'],
    [b'{"schema": "gate/1", "kind": "command", "id": "q1", "cmd": "self_destruct"}'],
    [b'{"schema": "gate/1", "kind": "command", "cmd": "open", "lane": "A"}'],
    [b"one", b"two"],
])
def test_malformed_messages_get_error_acks_and_change_nothing(
        running: Running, ctx: zmq.Context, frames: list[bytes]) -> None:
    c = client(running, ctx)
    try:
        c.heartbeat()
        before = c.status()
        reply = raw_request(running.cmd, ctx, frames, running.keys)
        ack = decode_ack(json.dumps(reply).encode())
        assert not ack.ok and ack.code and ack.error
        assert c.status() == before and running.io.outputs() == {"A": False, "B": False}
    finally:
        c.close()


def test_command_past_its_deadline_is_refused(running: Running, ctx: zmq.Context) -> None:
    past = time.monotonic() - 0.5
    reply = raw_request(running.cmd, ctx, [json.dumps(
        {"schema": "gate/1", "kind": "command", "id": "late", "cmd": "heartbeat",
         "deadline": past}).encode()], running.keys)
    assert reply["ok"] is False and reply["code"] == "expired" and reply["id"] == "late"
    assert running.server.machine.last_heartbeat is None


def test_req_socket_peer_is_answered(running: Running, ctx: zmq.Context) -> None:
    s = curve(ctx.socket(zmq.REQ), running.keys)
    try:
        s.connect(running.cmd)
        s.send(b'{"schema": "gate/1", "kind": "command", "id": "r", "cmd": "status"}')
        assert s.poll(2000)
        assert decode_ack(s.recv()).ok
    finally:
        s.close()


def test_ipc_sockets_are_owner_only(running: Running) -> None:
    for endpoint in (running.cmd, running.ev):
        path = Path(endpoint[len("ipc://"):])
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_unavailable_when_nothing_listens(ctx: zmq.Context, sockdir: Path,
                                          ckeys: ClientKeys) -> None:
    c = GateClient(f"ipc://{sockdir}/none.sock", f"ipc://{sockdir}/none-ev.sock", 150,
                   context=ctx, keys=ckeys)
    try:
        t0 = time.monotonic()
        with pytest.raises(GateUnavailableError, match="manual"):
            c.heartbeat()
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(GateUnavailableError):
            c.open("A", grant(), 1000)
    finally:
        c.close()


def test_stalled_controller_times_out_and_late_command_is_not_acted_on(
        ctx: zmq.Context, sockdir: Path, skeys: ServerKeys, ckeys: ClientKeys) -> None:
    io = SimulatedGateIO(["A"])
    server = GateServer(GateMachine(["A"]), io, SystemClock(),
                        command_endpoint=f"ipc://{sockdir}/c.sock",
                        event_endpoint=f"ipc://{sockdir}/e.sock", keys=skeys)
    c = GateClient(server.command_endpoint, server.event_endpoint, 200, context=ctx, keys=ckeys)
    try:
        server.step(0)
        with pytest.raises(GateUnavailableError):
            c.heartbeat()  # the controller is not stepping: no ack
        for _ in range(5):
            server.step(10)  # now it wakes up (the stale heartbeat may still be queued)
        assert server.machine.last_heartbeat is None  # the late heartbeat did nothing
        ready = threading.Event()

        def serve() -> None:
            while not ready.is_set():
                server.step(5)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            assert c.heartbeat().ok  # a fresh socket, a fresh id: the client recovered
        finally:
            ready.set()
            t.join(2)
    finally:
        c.close()
        server.shutdown()


def test_second_controller_on_same_endpoint_fails_clearly(running: Running,
                                                          skeys: ServerKeys) -> None:
    with pytest.raises(GateStartError, match="another gate controller"):
        GateServer(GateMachine(["A"]), SimulatedGateIO(["A"]), SystemClock(),
                   command_endpoint=running.cmd, event_endpoint=running.ev + "x", keys=skeys)


@pytest.mark.parametrize("fire", [False, True])
def test_shutdown_leaves_gates_closed_unless_fire(ctx: zmq.Context, sockdir: Path,
                                                  fire: bool, skeys: ServerKeys,
                                                  ckeys: ClientKeys) -> None:
    io = SimulatedGateIO(["A", "B"])
    server = GateServer(GateMachine(["A", "B"]), io, SystemClock(),
                        command_endpoint=f"ipc://{sockdir}/s.sock",
                        event_endpoint=f"ipc://{sockdir}/se.sock", keys=skeys)
    c = GateClient(server.command_endpoint, server.event_endpoint, 500, context=ctx, keys=ckeys)
    stop = threading.Event()
    t = threading.Thread(target=server.serve_forever, args=(stop,), daemon=True)
    t.start()
    try:
        c.heartbeat()
        assert c.override("A", "open", "wheelchair", "sup1").ok
        assert io.outputs() == {"A": True, "B": False}
        if fire:
            io.trigger_fire_alarm()
            wait_for(lambda: io.outputs() == {"A": True, "B": True})
    finally:
        stop.set()
        t.join(2)
        c.close()
        server.shutdown()
    assert io.closed
    assert io.outputs() == ({"A": True, "B": True} if fire else {"A": False, "B": False})


def test_logs_carry_no_free_text_reasons(running: Running, ctx: zmq.Context) -> None:
    c = client(running, ctx)
    try:
        with capture_logs() as logs:
            c.heartbeat()
            c.reset("A", "Mrs Example fainted", "sup1")
            time.sleep(0.05)
        assert logs and not any("Example" in repr(e) for e in logs)
    finally:
        c.close()


class _BrokenIO(SimulatedGateIO):
    def __init__(self) -> None:
        super().__init__(["A"])
        self.broken = False

    def poll(self, now: float):
        if self.broken:
            raise RuntimeError("driver bug")
        return super().poll(now)


def test_a_driver_exception_is_a_fault_not_a_crash(sockdir: Path, skeys: ServerKeys) -> None:
    io = _BrokenIO()
    server = GateServer(GateMachine(["A"]), io, SystemClock(),
                        command_endpoint=f"ipc://{sockdir}/b.sock",
                        event_endpoint=f"ipc://{sockdir}/be.sock", keys=skeys)
    try:
        io.broken = True
        with capture_logs() as logs:
            server.step(0)
        assert server.machine.snapshot() == {"A": LaneState.FAULT}
        assert any(e["event"] == "gate_driver_error" for e in logs)
        io.broken = False
        server.step(0)
        assert server.machine.snapshot() == {"A": LaneState.MANUAL}  # back, no daemon yet
    finally:
        server.shutdown()


def test_simulator_control_requests() -> None:
    from gate_controller.drivers.sim_control import apply

    sim = SimulatedGateIO(["A"])
    assert not apply(sim, {"sim": "fire", "active": True})["ok"]  # no schema
    assert not apply(sim, {"schema": "gate-sim/1", "sim": "fire", "active": "yes"})["ok"]
    assert not apply(sim, {"schema": "gate-sim/1", "sim": "launch"})["ok"]
    assert "unknown lane" in apply(sim, {"schema": "gate-sim/1", "sim": "pass",
                                         "lane": "Q"})["error"]
    reply = apply(sim, {"schema": "gate-sim/1", "sim": "fire", "active": True})
    assert reply["ok"] and reply["fire"] is True
    assert [i.kind for i in sim.poll(0.0)] == ["fire_alarm"]


def test_a_handler_bug_is_an_internal_error_ack_not_a_dead_loop(running: Running,
                                                                 ctx: zmq.Context) -> None:
    real = running.server.machine.command
    calls = []

    def broken(cmd, now, peer="daemon"):
        if not calls:
            calls.append(cmd.cmd)
            raise RecursionError("as deep as the report's frame")
        return real(cmd, now, peer=peer)

    running.server.machine.command = broken  # type: ignore[method-assign]
    c = client(running, ctx)
    try:
        with capture_logs() as logs:
            ack = c.heartbeat()
        assert not ack.ok and ack.code == "internal"
        assert any(e["event"] == "gate_frame_failed" for e in logs)
        assert c.heartbeat().ok and running.thread.is_alive()
        assert "internal=1" in c.status_detail().info["bad_frame_codes"]
    finally:
        c.close()
