"""A loopback bench for a provisioned device: its gate controller and a central, in-process.

`LoopbackPeers(device)` starts, in threads of this process, the gate controller with the driver
the settings name (simulated by default) and the reference telemetry collector (with a fresh
central keypair that admits this device's public key); imports central's public key into the
device and points the device's settings at both on free loopback ports. Used by the self-test's
tests, the hardware-in-the-loop suite in simulator mode, and demos that need a whole box
without hardware.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from pathlib import Path
from types import TracebackType

import structlog

from foundation.clock import Clock, SystemClock
from provisioning.central_key import import_central_key
from provisioning.device import Device, update_settings

log = structlog.get_logger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


class LoopbackPeers:
    """Context manager: gate controller (driver from the settings) + collector, on loopback."""

    def __init__(self, device: Device, *, gate: bool = True, central: bool = True,
                 clock: Clock | None = None) -> None:
        self.device = device
        self._want_gate, self._want_central = gate, central
        self._clock = clock or SystemClock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tmp: Path | None = None
        self.controller = None
        self.collector = None
        self.central_dir: Path | None = None
        self._out = None

    def __enter__(self) -> LoopbackPeers:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        patch: dict = {}
        if self._want_gate:
            patch["gate"] = {"command_endpoint": _endpoint(), "event_endpoint": _endpoint(),
                             "sim_control_endpoint": _endpoint()}
        if self._want_central:
            patch["telemetry"] = {"enabled": True, "central_endpoint": _endpoint()}
        self.device = update_settings(self.device, patch)
        if self._want_gate:
            self._start_gate()
        if self._want_central:
            self._start_central()

    def _start_gate(self) -> None:
        from gate_controller.app import build_controller

        controller = build_controller(self.device.settings.gate, self._clock)
        self.controller = controller
        t = threading.Thread(target=controller.server.serve_forever, args=(self._stop,),
                             name="loopback-gate", daemon=True)
        t.start()
        self._threads.append(t)

    def _start_central(self) -> None:
        from central.collector import Collector
        from foundation.curve_keys import create_keypair

        self._tmp = Path(tempfile.mkdtemp(prefix="cg-central-"))
        keys = self._tmp / "keys"
        public, _secret = create_keypair(keys, "central")
        # admit this device: its public key file in central's key folder
        shutil.copy(self.device.layout.device_public_key, keys / "device-under-test.key")
        import_central_key(self.device.layout, public)
        self.central_dir = keys
        self._out = open(self._tmp / "collector.out", "w")  # noqa: SIM115 (closed in close)
        ready = threading.Event()
        failed: list[BaseException] = []
        endpoint = self.device.settings.telemetry.central_endpoint
        db = self._tmp / "central.db"

        def serve() -> None:  # the collector's SQLite handle must live in its serving thread
            try:
                self.collector = Collector(keys, db, endpoint, out=self._out, print_every_s=3600)
                self.collector.serve(self._stop, ready)
            except BaseException as exc:
                failed.append(exc)
                ready.set()

        t = threading.Thread(target=serve, name="loopback-central", daemon=True)
        t.start()
        self._threads.append(t)
        if not ready.wait(10):
            raise RuntimeError("the loopback collector did not start within 10 s")
        if failed:
            raise failed[0]

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
        self._threads.clear()
        if self.controller is not None:
            self.controller.close()
            self.controller = None
        if self._out is not None:
            self._out.close()
            self._out = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
