"""Safety drills against a real controller process: heartbeat loss and fire alarm, timed.

Used by the integration tests and by bench/gate.py (and usable on a box under test):
`ControllerProcess` starts `python -m gate_controller simulate|run` from a settings file;
`heartbeat_loss_trial` starts a stand-in daemon (`pinger`), waits for the lanes to be
automatic, kills it with SIGKILL and times the controller's move of every lane to `manual`;
`fire_alarm_trial` raises the simulated fire alarm and times every lane's `emergency_open`
event, then clears and resets. Times are measured on the observer's side of the event socket.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

from foundation.errors import ConsentGateError
from foundation.settings import GateSettings, load_settings
from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.drivers.sim_control import send
from wire.gate import LaneState, StateEvent


class DrillError(ConsentGateError):
    """A drill step did not happen in time (see the controller's log file named in it)."""


def write_config(path: Path, gate: dict[str, object], level: str = "info") -> Path:
    """A minimal settings TOML with the given [gate] values (strings, numbers, lists)."""
    def value(v: object) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v)

    lines = ["[logging]", f'level = "{level}"', "json_logs = true", "", "[gate]"]
    lines += [f"{k} = {value(v)}" for k, v in gate.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class ControllerProcess:
    """A gate controller child process; logs go to `log_path`."""

    def __init__(self, config: Path, command: str = "simulate", log_path: Path | None = None,
                 ready_timeout_s: float = 20.0) -> None:
        self.config = config
        self.gate: GateSettings = load_settings(config).gate
        self.log_path = log_path or config.with_suffix(f".{command}.log")
        args = [sys.executable, "-m", "gate_controller", command, "--config", str(config)]
        if command == "simulate":
            args.append("--no-console")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.client = GateClient(self.gate.command_endpoint, self.gate.event_endpoint, 500)
        self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise DrillError(f"controller exited with {self.proc.returncode}; see "
                                 f"{self.log_path}")
            try:
                self.client.status()
                time.sleep(0.2)  # let the event subscription settle (slow joiner)
                return
            except GateUnavailableError:
                time.sleep(0.05)
        raise DrillError(f"controller did not answer in {timeout_s:g} s; see {self.log_path}")

    def wait_states(self, state: LaneState, timeout_s: float) -> float:
        """Wait for a `state` event on every lane; monotonic time of the last one."""
        pending = set(self.gate.lanes)
        end = time.monotonic() + timeout_s
        while pending:
            left_ms = int((end - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise DrillError(f"lanes {sorted(pending)} did not reach {state.value} in "
                                 f"{timeout_s:g} s (now {self.client.status()})")
            event = self.client.next_event(left_ms)
            if isinstance(event, StateEvent) and event.state == state:
                pending.discard(event.lane)
        return time.monotonic()

    def drain_events(self) -> None:
        while self.client.next_event(0) is not None:
            pass

    def stop(self, timeout_s: float = 10.0) -> int:
        """SIGTERM, then wait; the exit status (SIGKILL after the timeout)."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def start_pinger(config: Path, interval_s: float = 0.2) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gate_controller", "pinger", "--config",
                             str(config), "--interval", str(interval_s)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)


def heartbeat_loss_trial(ctl: ControllerProcess, timeout_s: float = 5.0) -> float:
    """Seconds from SIGKILL of the stand-in daemon to every lane `manual`."""
    pinger = start_pinger(ctl.config)
    try:
        ctl.wait_states(LaneState.CLOSED, 20.0)  # python start-up of the pinger included
        ctl.drain_events()
        t0 = time.monotonic()
        pinger.kill()
        t1 = ctl.wait_states(LaneState.MANUAL, timeout_s)
        return t1 - t0
    finally:
        with contextlib.suppress(ProcessLookupError):
            pinger.kill()
        pinger.wait()


def fire_alarm_trial(ctl: ControllerProcess, timeout_s: float = 2.0) -> float:
    """Seconds from raising the simulated fire alarm to every lane `emergency_open`."""
    ctl.drain_events()
    t0 = time.monotonic()
    reply = send(ctl.gate.sim_control_endpoint, {"sim": "fire", "active": True})
    if not reply.get("ok"):
        raise DrillError(f"simulator refused the fire alarm: {reply.get('error')}")
    t1 = ctl.wait_states(LaneState.EMERGENCY_OPEN, timeout_s)
    send(ctl.gate.sim_control_endpoint, {"sim": "fire", "active": False})
    for lane in ctl.gate.lanes:
        deadline = time.monotonic() + 2.0
        while not ctl.client.reset(lane, "fire drill over", "drill").ok:
            if time.monotonic() > deadline:
                raise DrillError(f"lane {lane} could not be reset after the drill")
            time.sleep(0.01)
    return t1 - t0


def status_round_trip(ctl: ControllerProcess) -> float:
    """Seconds for one status command and its ack: the link's own latency floor."""
    t0 = time.monotonic()
    ctl.client.status()
    return time.monotonic() - t0
