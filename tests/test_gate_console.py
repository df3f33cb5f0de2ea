"""The simulator's console view, driven line by line against a real server on ipc sockets.

A person at the console must be able to play every party: the hardware (passages, fire
alarm), the daemon (heartbeats, grants) and staff (reset), and see the result.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from foundation.clock import SystemClock
from foundation.settings import GateSettings
from gate_controller.client import GateClient
from gate_controller.console import ConsoleView
from gate_controller.drivers.simulated import SimulatedGateIO
from gate_controller.keys import create_gate_keys, server_keys
from gate_controller.safety import GateMachine
from gate_controller.server import GateServer


def wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def console() -> Iterator[tuple[ConsoleView, SimulatedGateIO, io.StringIO]]:
    d = Path(tempfile.mkdtemp(prefix="gc", dir="/tmp"))
    sim = SimulatedGateIO(["A", "B"])
    cmd, ev = f"ipc://{d}/cmd.sock", f"ipc://{d}/ev.sock"
    gs = GateSettings(command_endpoint=cmd, event_endpoint=ev, **create_gate_keys(d / "keys"))
    server = GateServer(GateMachine(["A", "B"], heartbeat_timeout_s=0.6), sim, SystemClock(),
                        command_endpoint=cmd, event_endpoint=ev, keys=server_keys(gs))
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(stop,), daemon=True)
    thread.start()
    out = io.StringIO()
    view = ConsoleView(GateClient.from_settings(gs, "daemon", timeout_ms=500), sim,
                       threading.Event(), out=out, keyboard=False)
    view.start()
    try:
        yield view, sim, out
    finally:
        view.close()
        stop.set()
        thread.join(3)
        server.shutdown()
        shutil.rmtree(d, ignore_errors=True)


def test_console_plays_daemon_hardware_and_staff(console) -> None:
    view, sim, out = console
    wait_for(lambda: "daemon: no heartbeat" in out.getvalue())  # the table at start
    assert "manual" in out.getvalue()

    view.handle_line("open A")  # no daemon: refused, and the console says why
    assert "refused (manual)" in out.getvalue()
    assert sim.outputs()["A"] is False

    view.handle_line("daemon on")
    wait_for(lambda: "lane A: closed (daemon_heartbeat)" in out.getvalue())
    view.handle_line("open A")
    assert "accepted on lane A" in out.getvalue()
    assert sim.outputs()["A"] is True
    view.handle_line("pass A")
    wait_for(lambda: sim.outputs()["A"] is False)
    view.handle_line("pass A")  # nobody may follow on a used grant
    wait_for(lambda: sim.alarms()["A"])
    wait_for(lambda: "TAILGATING" in out.getvalue())
    view.handle_line("reset A")
    wait_for(lambda: not sim.alarms()["A"])

    view.handle_line("fire on")
    wait_for(lambda: all(sim.outputs().values()))
    view.handle_line("reset B")  # not while the alarm is active
    assert "refused (fire_alarm_active)" in out.getvalue()
    view.handle_line("fire off")
    time.sleep(0.1)
    assert all(sim.outputs().values()), "latched open until a staff reset"
    view.handle_line("reset A")
    view.handle_line("reset B")
    wait_for(lambda: not any(sim.outputs().values()))

    view.handle_line("show")
    assert "daemon: alive" in out.getvalue()
    view.handle_line("open Z")
    assert "refused (unknown_lane)" in out.getvalue()
    view.handle_line("frob")
    assert "not understood: 'frob'" in out.getvalue()

    view.handle_line("daemon off")
    wait_for(lambda: "lane B: manual (heartbeat_lost)" in out.getvalue())
