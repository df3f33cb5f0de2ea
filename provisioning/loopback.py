"""A loopback bench for a provisioned device: its gate controller and a central, as processes.

`LoopbackPeers(device)` points the device's settings at free loopback ports, then starts, as
real child processes through foundation.peers (the launcher every caller shares), the gate
controller with the driver the settings name (simulated by default; `python -m gate_controller
run` on the device's own settings file) and the reference telemetry collector (`python -m
central collect`, with a fresh central keypair that admits this device's public key, whose
public key it imports into the device). A gate controller that dies is started again (at most
5 times a minute). Used by the self-test's tests, the hardware-in-the-loop suite in simulator
mode, and demos that need a whole box without hardware.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from foundation.peers import (
    COLLECTOR_READY,
    Peer,
    Peers,
    collector_argv,
    gate_controller_argv,
    loopback_endpoint,
)
from provisioning.central_key import import_central_key
from provisioning.device import Device, update_settings


class LoopbackPeers:
    """Context manager: gate controller (driver from the settings) + collector, on loopback.

    `gate` and `collector` are the peers (None when not asked for); `central_dir` is central's
    key folder (the allow-list: remove a device's key file there to stop admitting it); the
    peers' logs are under `log_dir` (a temp folder unless given).
    """

    def __init__(self, device: Device, *, gate: bool = True, central: bool = True,
                 log_dir: Path | None = None, restart_gate: bool = True) -> None:
        self.device = device
        self._want_gate, self._want_central = gate, central
        self._restart_gate = restart_gate
        self._tmp = Path(tempfile.mkdtemp(prefix="cg-loopback-"))
        self.log_dir = log_dir or self._tmp / "logs"
        self.peers = Peers(self.log_dir)
        self.gate: Peer | None = None
        self.collector: Peer | None = None
        self.central_dir: Path | None = None

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
            patch["gate"] = {"command_endpoint": loopback_endpoint(),
                             "event_endpoint": loopback_endpoint(),
                             "sim_control_endpoint": loopback_endpoint()}
        if self._want_central:
            patch["telemetry"] = {"enabled": True, "central_endpoint": loopback_endpoint()}
        self.device = update_settings(self.device, patch)
        if self._want_central:
            self._start_central()
        if self._want_gate:
            self._start_gate()

    def _start_gate(self) -> None:
        from gate_controller.client import GateClient

        g = self.device.settings.gate
        client = GateClient.from_settings(g, "operator", timeout_ms=500, subscribe=False)

        try:
            self.gate = self.peers.start("gate", gate_controller_argv(self.device.settings_file),
                                         ready=client.answers, restart=self._restart_gate)
        finally:
            client.close()

    def _start_central(self) -> None:
        from foundation.curve_keys import create_keypair

        keys = self._tmp / "keys"
        public, _secret = create_keypair(keys, "central")
        # admit this device: its public key file in central's key folder
        shutil.copy(self.device.layout.device_public_key, keys / "device-under-test.key")
        import_central_key(self.device.layout, public)
        self.central_dir = keys
        endpoint = self.device.settings.telemetry.central_endpoint
        self.collector = self.peers.start(
            "collector", collector_argv(keys, self._tmp / "central.db", endpoint,
                                        print_every_s=3600),
            ready_line=COLLECTOR_READY, ready_timeout_s=10)

    def close(self) -> None:
        self.peers.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
