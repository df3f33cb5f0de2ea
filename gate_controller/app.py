"""Composition root of the gate controller process: settings -> driver -> machine -> server.

`run_controller` builds everything from the [gate] settings section, installs SIGTERM/SIGINT
handlers that stop the loop, and on the way out leaves the gates in the safe state (see
`GateServer.shutdown`). With the simulated driver it also binds the simulator control socket
and maps SIGUSR1/SIGUSR2 to raising/clearing the simulated fire alarm.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog

from foundation.clock import Clock, SystemClock
from foundation.gate_settings import SerialRelayDriver
from foundation.settings import GateSettings
from gate_controller.drivers.serial_relay import SerialRelayGateIO
from gate_controller.drivers.sim_control import SimulatorControl
from gate_controller.drivers.simulated import SimulatedGateIO
from gate_controller.gateio import GateIO
from gate_controller.keys import server_keys
from gate_controller.safety import GateMachine
from gate_controller.server import GateServer

log = structlog.get_logger(__name__)


@dataclass
class Controller:
    """A built controller: the server, its driver, and the simulator control (if simulated)."""

    server: GateServer
    io: GateIO
    sim_control: SimulatorControl | None = None

    def close(self) -> None:
        self.server.shutdown()
        if self.sim_control is not None:
            self.sim_control.close()


def build_driver(gs: GateSettings) -> GateIO:
    """The gate I/O of [gate] driver: one implementation per driver `type`."""
    d = gs.driver
    if isinstance(d, SerialRelayDriver):
        return SerialRelayGateIO(d.serial_port, list(gs.lanes), baud=d.serial_baud,
                                 ping_s=d.board_ping_s, timeout_s=d.board_timeout_s,
                                 reconnect_max_s=d.reconnect_max_s)
    return SimulatedGateIO(list(gs.lanes))


def build_controller(gs: GateSettings, clock: Clock | None = None,
                     io: GateIO | None = None) -> Controller:
    clock = clock or SystemClock()
    keys = server_keys(gs)  # GateKeyError (how to make them) before any hardware is touched
    io = io or build_driver(gs)
    machine = GateMachine(gs.lanes, heartbeat_timeout_s=gs.heartbeat_timeout_s,
                          override_ttl_ms=gs.override_ttl_ms,
                          tailgate_window_s=gs.tailgate_window_s)
    server = GateServer(machine, io, clock, command_endpoint=gs.command_endpoint,
                        event_endpoint=gs.event_endpoint, keys=keys)
    control = None
    if isinstance(io, SimulatedGateIO):
        try:
            control = SimulatorControl(io, gs.sim_control_endpoint)
        except Exception:
            server.shutdown()
            raise
    return Controller(server, io, control)


def run_controller(gs: GateSettings, *, on_ready: Callable[[Controller], None] | None = None,
                   stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or `stop`); gates are left safe on the way out."""
    stop = stop or threading.Event()
    controller = build_controller(gs)
    previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def _stop(signum: int, _frame: object) -> None:
        log.info("gate_signal", signal=signal.Signals(signum).name)
        stop.set()

    handlers: dict[int, Callable[[int, object], None]] = {
        signal.SIGTERM: _stop, signal.SIGINT: _stop}
    if isinstance(controller.io, SimulatedGateIO):
        sim = controller.io
        handlers[signal.SIGUSR1] = lambda *_: sim.trigger_fire_alarm()
        handlers[signal.SIGUSR2] = lambda *_: sim.clear_fire_alarm()
    for signum, handler in handlers.items():
        previous[signum] = signal.signal(signum, handler)
    try:
        if on_ready is not None:
            on_ready(controller)
        controller.server.serve_forever(stop)
    finally:
        controller.close()
        for signum, old in previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, old)
    return 0
