"""The real controller process: heartbeat loss, fire alarm, SIGTERM, the serial board, the CLI.

Endpoints are ipc:// sockets in a private temp dir (or tcp on ports picked free at run time),
so these tests never collide with other controllers running on the machine; the gate keys are
made in the same temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gate_controller.drill import (
    ControllerProcess,
    fire_alarm_trial,
    heartbeat_loss_trial,
    start_pinger,
    write_config,
)
from gate_controller.drivers.relay_board_sim import RelayBoardSim
from gate_controller.keys import create_gate_keys, key_files
from wire.gate import LaneState, StateEvent

pytestmark = pytest.mark.integration


@pytest.fixture
def sockdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="gp", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def keys(d: Path) -> dict[str, Path]:
    """The gate keys in d/keys (made once per folder), as [gate] settings."""
    return key_files(d / "keys") if (d / "keys").exists() else create_gate_keys(d / "keys")


def ipc_gate(d: Path, **extra: object) -> dict[str, object]:
    return {"command_endpoint": f"ipc://{d}/s/cmd", "event_endpoint": f"ipc://{d}/s/ev",
            "sim_control_endpoint": f"ipc://{d}/s/sim", "lanes": ["A", "B"], **keys(d),
            **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate_controller", *args], text=True,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def controller(sockdir: Path) -> Iterator[ControllerProcess]:
    ctl = ControllerProcess(write_config(sockdir / "gate.toml", ipc_gate(sockdir)))
    yield ctl
    assert ctl.stop() == 0


def test_killing_the_daemon_goes_manual_within_2s(controller: ControllerProcess) -> None:
    elapsed = heartbeat_loss_trial(controller)
    assert elapsed < 2.0
    assert controller.client.status() == {"A": "manual", "B": "manual"}


def test_fire_alarm_opens_all_lanes_within_100ms(controller: ControllerProcess) -> None:
    times = [fire_alarm_trial(controller) for _ in range(3)]
    assert max(times) < 0.100, times
    assert controller.client.status() == {"A": "manual", "B": "manual"}  # reset, no daemon


def test_sigusr1_raises_the_simulated_fire_alarm(controller: ControllerProcess) -> None:
    controller.drain_events()
    controller.proc.send_signal(signal.SIGUSR1)
    controller.wait_states(LaneState.EMERGENCY_OPEN, 2.0)
    controller.proc.send_signal(signal.SIGUSR2)
    reply = cli("sim", "show", "--config", str(controller.config))
    assert reply.returncode == 0, reply.stderr
    shown = json.loads(reply.stdout)
    assert shown["outputs"] == {"A": True, "B": True}  # latched after the alarm cleared


def test_status_and_sim_commands(controller: ControllerProcess) -> None:
    out = cli("status", "--config", str(controller.config), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["lanes"] == {"A": "manual", "B": "manual"}
    out = cli("sim", "pass", "Z", "--config", str(controller.config))
    assert out.returncode == 1 and out.stderr.startswith("error: unknown lane")


def test_sigterm_leaves_gates_safe_and_exits_zero(sockdir: Path) -> None:
    ctl = ControllerProcess(write_config(sockdir / "gate.toml", ipc_gate(sockdir)))
    pinger = start_pinger(ctl.config)
    try:
        ctl.wait_states(LaneState.CLOSED, 20)
        assert ctl.client.override("A", "open", "wheelchair", "sup1").ok
        ctl.proc.send_signal(signal.SIGTERM)
        seen: dict[str, str] = {}
        end = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < end:
            e = ctl.client.next_event(200)
            if isinstance(e, StateEvent) and "stopping" in e.reason:
                seen[e.lane] = e.state.value
        assert seen == {"A": "manual", "B": "manual"}
        assert ctl.proc.wait(5) == 0
    finally:
        pinger.kill()
        pinger.wait()
        ctl.stop()
    log = ctl.log_path.read_text()
    assert '"event": "gate_stop"' in log


def test_serial_relay_process_against_the_board(sockdir: Path) -> None:
    board = RelayBoardSim.start(channels=2, link=sockdir / "ttyRELAY")
    cfg = write_config(sockdir / "gate.toml", ipc_gate(
        sockdir, driver="serial_relay", serial_port=str(board.device), board_ping_s=0.1,
        board_timeout_s=0.5, reconnect_max_s=0.3))
    ctl = ControllerProcess(cfg, command="run")
    try:
        board.raise_fire()
        ctl.wait_states(LaneState.EMERGENCY_OPEN, 2.0)
        assert board.outputs == {1: True, 2: True}
        board.clear_fire()
        for lane in ("A", "B"):
            end = time.monotonic() + 2
            while not ctl.client.reset(lane, "drill", "sup1").ok:
                assert time.monotonic() < end
                time.sleep(0.02)
        board.garble()  # fault, reconnect, no crash
        end = time.monotonic() + 3
        faults = []
        while time.monotonic() < end and len(faults) < 2:
            e = ctl.client.next_event(100)
            if e is not None and e.event == "fault":
                faults.append(e.active)
        assert faults == [True, False]
        assert ctl.client.override("A", "open", "wheelchair", "sup1").ok
        end = time.monotonic() + 2
        while not board.outputs[1]:
            assert time.monotonic() < end
            time.sleep(0.01)
    finally:
        assert ctl.stop() == 0
        board_outputs = dict(board.outputs)
        board.stop()
    assert board_outputs == {1: False, 2: False}  # SIGTERM: leaves locked


def test_tcp_endpoints_on_free_ports(sockdir: Path) -> None:
    ports = [free_port() for _ in range(3)]
    cfg = write_config(sockdir / "gate.toml", {
        "command_endpoint": f"tcp://127.0.0.1:{ports[0]}",
        "event_endpoint": f"tcp://127.0.0.1:{ports[1]}",
        "sim_control_endpoint": f"tcp://127.0.0.1:{ports[2]}", "lanes": ["A"],
        **keys(sockdir)})
    ctl = ControllerProcess(cfg)
    try:
        assert fire_alarm_trial(ctl) < 0.1
        other = write_config(sockdir / "other.toml", keys(sockdir))  # default endpoints
        out = cli("status", "--config", str(other), "--command-endpoint",
                  f"tcp://127.0.0.1:{ports[0]}")
        assert out.returncode == 0 and "lane A" in out.stdout
        assert "bad_frames" in out.stdout
    finally:
        assert ctl.stop() == 0


def test_operator_errors_are_one_line(sockdir: Path) -> None:
    keyed = write_config(sockdir / "keyed.toml", keys(sockdir))
    out = cli("status", "--config", str(keyed), "--command-endpoint", f"ipc://{sockdir}/none",
              "--timeout-ms", "100")
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "treat the lanes as manual" in out.stderr
    assert "socket file does not exist" in out.stderr
    out = cli("status", "--timeout-ms", "0")
    assert out.returncode == 2 and "1..60000" in out.stderr and "Traceback" not in out.stderr
    bad = sockdir / "bad.toml"
    bad.write_text('[gate]\ncommand_endpoint = "tcp://10.0.0.1:5560"\n')
    out = cli("run", "--config", str(bad))
    assert out.returncode == 1 and "gate.command_endpoint" in out.stderr
    assert "Traceback" not in out.stderr
    serial_cfg = sockdir / "serial.toml"
    serial_cfg.write_text('[gate]\ndriver = "serial_relay"\n')
    out = cli("run", "--config", str(serial_cfg))
    assert out.returncode == 1 and "serial_port" in out.stderr


def test_second_controller_refuses_to_start(controller: ControllerProcess) -> None:
    out = cli("run", "--config", str(controller.config))
    assert out.returncode == 1 and "another gate controller" in out.stderr
    assert controller.client.status()  # the first one is untouched
    assert os.path.exists(controller.gate.command_endpoint[len("ipc://"):])


def test_missing_gate_keys_say_how_to_make_them(sockdir: Path) -> None:
    cfg = write_config(sockdir / "nokeys.toml", {
        **ipc_gate(sockdir), "controller_secret_key_file": str(sockdir / "absent.key_secret")})
    out = cli("run", "--config", str(cfg))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "absent.key_secret is missing" in out.stderr
    assert "provisioning init" in out.stderr and "rotate-gate-keys" in out.stderr
    out = cli("status", "--config", str(cfg), "--key-file", str(sockdir / "nope"))
    assert out.returncode == 1 and "rotate-gate-keys" in out.stderr
