"""Safety drills against a real controller process: heartbeat loss and fire alarm, timed.

Used by the integration tests and by bench/gate.py (and usable on a box under test):
`ControllerProcess` starts `python -m gate_controller simulate|run` from a settings file
(through foundation.peers, the launcher every caller shares);
`heartbeat_loss_trial` starts a stand-in daemon (`pinger`), waits for the lanes to be
automatic, kills it with SIGKILL and times the controller's move of every lane to `manual`;
`fire_alarm_trial` raises the simulated fire alarm and times every lane's `emergency_open`
event, then clears and resets. Times are measured on the observer's side of the event socket.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from foundation.errors import ConsentGateError
from foundation.peers import Peer, PeerError, gate_controller_argv, python_module
from foundation.settings import GateSettings, load_settings
from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.drivers.sim_control import send
from wire.gate import LaneState, StateEvent


class DrillError(ConsentGateError):
    """A drill step did not happen in time (see the controller's log file named in it)."""


def write_config(path: Path, gate: dict[str, object], level: str = "info") -> Path:
    """A minimal settings TOML with the given [gate] values (strings, paths, numbers, lists);
    the key files too (`gate_controller.keys.key_files`, made by `create_gate_keys`)."""
    def value(v: object) -> str:
        if isinstance(v, Path):
            v = str(v)
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
    """A gate controller child process (a `foundation.peers.Peer`); logs go to `log_path`."""

    def __init__(self, config: Path, command: str = "simulate", log_path: Path | None = None,
                 ready_timeout_s: float = 20.0, restart: bool = False) -> None:
        self.config = config
        self.gate: GateSettings = load_settings(config).gate
        self.log_path = log_path or config.with_suffix(f".{command}.log")
        self.client = GateClient.from_settings(self.gate, "daemon", timeout_ms=500)
        self.peer = Peer("gate controller", gate_controller_argv(config, command),
                         self.log_path, ready=self._answers, ready_timeout_s=ready_timeout_s,
                         restart=restart, new_session=False)
        try:
            self.peer.start()
        except PeerError as exc:
            self.client.close()
            self.peer.kill()
            raise DrillError(str(exc)) from None
        time.sleep(0.2)  # let the event subscription settle (slow joiner)

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.peer.proc is not None
        return self.peer.proc

    def _answers(self) -> bool:
        try:
            self.client.status()
        except GateUnavailableError:
            return False
        return True

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
        rc = self.peer.stop(timeout_s)
        assert rc is not None
        return rc


def start_pinger(config: Path, interval_s: float = 0.2) -> Peer:
    """A stand-in daemon sending heartbeats (`python -m gate_controller pinger`)."""
    log = config.with_suffix(".pinger.log")
    return Peer("pinger", python_module("gate_controller", "pinger", "--config", config,
                                        "--interval", interval_s), log,
                new_session=False).start()


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
        pinger.kill()


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
