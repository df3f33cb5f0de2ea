"""The demo's stage: a throwaway device, its peers as real processes, the daemon on a scene.

`Stage.setup` provisions a device in the work folder (provisioning's own `init_device`; k = 1
so single events are visible at the collector, where a provisioned device defaults to k = 5),
adds the gate agent's account, starts the telemetry collector and the gate controller
(simulated gate) as child processes on free loopback ports through foundation.peers (their
logs under logs/; a gate controller that dies is started again), and runs the daemon
in-process on the synthetic scene (visible + thermal), its decision events queued for the
day's script. `teardown` stops everything, newest first.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demo.errors import DemoError
from edge.decisions.events import DecisionEvent
from foundation.clock import SystemClock
from foundation.logs import configure_logging
from foundation.peers import (
    COLLECTOR_READY,
    PeerError,
    Peers,
    collector_argv,
    free_ports,
    gate_controller_argv,
)
from foundation.settings import default_model_dir

ROOT = Path(__file__).resolve().parents[1]
# the gate zone relative to the frame (0..1): 200..440 x 90..420 px of the 640x480 scene
ZONE = [(0.3125, 0.1875), (0.6875, 0.1875), (0.6875, 0.875), (0.3125, 0.875)]
AGENT = "demo-agent"


def model_dir() -> Path:
    path = default_model_dir()
    if os.environ.get("CONSENTGATE_MODEL_DIR") is None and (ROOT / ".models").is_dir():
        path = ROOT / ".models"
    return path


def demo_overrides(ports: list[int], fps: float, matching: str = "gallery") -> dict[str, Any]:
    gate_cmd, gate_evt, sim, central, kiosk = ports
    return {
        "matching": {"mode": matching},  # token: 1:1 with the traveller's own key only
        "logging": {"level": "info", "json_logs": True},
        "gate": {"command_endpoint": f"tcp://127.0.0.1:{gate_cmd}",
                 "event_endpoint": f"tcp://127.0.0.1:{gate_evt}",
                 "sim_control_endpoint": f"tcp://127.0.0.1:{sim}",
                 "driver": "simulated", "lanes": ["A"]},
        "telemetry": {"central_endpoint": f"tcp://127.0.0.1:{central}", "window_s": 5,
                      "k_anonymity": 1, "resend_initial_s": 0.5, "resend_max_s": 2.0,
                      "heartbeat_s": 1.0},
        "kiosk": {"port": kiosk},
        "capture": {"visible_source": "synthetic", "fps": fps},
        "thermal": {"enabled": True, "source": "synthetic"},
        "lanes": {"lanes": [{"lane_id": "A", "zone": ZONE}], "result_hold_s": 1.5,
                  "presenting_timeout_s": 5.0, "grant_ttl_ms": 6000},
        "consent": {"purge_interval_s": 2},
    }


class Stage:
    """Everything the day plays on; see the module docstring."""

    def __init__(self, workdir: Path, faces: Path | None, fps: float,
                 say: Callable[[str], None], matching: str = "gallery") -> None:
        self.workdir = workdir
        self.matching = matching
        self.faces = faces
        self.fps = fps
        self.say = say
        self.logs = workdir / "logs"
        self.peers = Peers(self.logs, cwd=ROOT)
        self.events: queue.Queue[DecisionEvent] = queue.Queue()
        self.daemon: Any = None
        self.agent_password = secrets.token_urlsafe(18)  # in memory only, for this run
        self._log_stream: Any = None

    def setup(self) -> None:
        from edge.daemon import Daemon
        from edge.vision.engine import FaceEngine
        from foundation.curve_keys import create_keypair
        from provisioning.device import init_device
        from provisioning.staff import add_staff

        self.logs.mkdir(parents=True, exist_ok=True)
        self._log_stream = open(self.logs / "daemon.jsonl", "a", buffering=1)  # noqa: SIM115
        configure_logging("info", json_logs=True, stream=self._log_stream)
        self.ports = free_ports(5)
        central = self.workdir / "central"
        central_pub, _ = create_keypair(central, "central")
        device = init_device(self.workdir / "device", "DEMO-1", model_dir=model_dir(),
                             central_public_key=central_pub,
                             overrides=demo_overrides(self.ports, self.fps, self.matching))
        self.settings = device.settings
        device_id = device.settings.device.device_id
        add_staff(device, AGENT, "agent", self.agent_password)
        shutil.copy(device.layout.device_public_key, central / f"{device_id}.key")
        self.say(f"provisioned device {device_id} in {self.workdir}")
        self.collector_db = central / "windows.db"
        try:
            self.peers.start("collector", collector_argv(
                central, self.collector_db, f"tcp://127.0.0.1:{self.ports[3]}",
                print_every_s=1), ready_line=COLLECTOR_READY)
            self.peers.start("gate", gate_controller_argv(device.settings_file), restart=True)
        except PeerError as exc:
            raise DemoError(str(exc)) from None
        self.engine = FaceEngine.from_settings(self.settings.vision)
        self.scene = self._scene(self.engine)
        self.daemon = Daemon.build(self.settings, SystemClock(), source=self.scene,
                                   engine=self.engine)
        self.daemon.pipeline.bus.subscribe(self.events.put)
        self.daemon.start_thread()
        self.wait(lambda: self.daemon.gate_link.up and self.lane_state() == "idle", 30,
                  "the gate controller did not come up")

    @property
    def kiosk_url(self) -> str:
        return f"https://127.0.0.1:{self.ports[4]}"

    def _scene(self, engine: Any) -> Any:
        from demo.photos import pick_photos
        from edge.screening.synth import SceneRenderer, synthetic_calibration
        from edge.screening.synth_source import SyntheticScene

        photos = pick_photos(self.faces, engine)
        renderer = SceneRenderer(synthetic_calibration((640, 480), (160, 120), seed=3), photos,
                                 seed=3)
        scene = SyntheticScene(renderer, SystemClock(), fps=self.fps)
        if self.matching == "gallery":
            return scene
        from demo.qr_scene import ShownCodes

        return ShownCodes(scene, SystemClock())  # travellers hold their QR code up to it

    def wait(self, cond: Callable[[], object], timeout: float, what: str) -> None:
        """Wait for `cond`; DemoError when it does not come true or a peer died for good."""
        try:
            self.peers.wait_for(cond, timeout, what)
        except PeerError as exc:
            raise DemoError(str(exc)) from None

    def lane_state(self) -> str:
        return self.daemon.pipeline.lanes["A"].machine.state.value

    def sim_pass(self, lane: str) -> None:
        """The simulated passage sensor: the traveller walks through the open gate."""
        import zmq

        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        s = ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.settings.gate.sim_control_endpoint)
        try:
            s.send_json({"schema": "gate-sim/1", "sim": "pass", "lane": lane})
            if s.poll(2000):
                s.recv_json()
        finally:
            s.close(0)

    def gate_restarts(self) -> int:
        with contextlib.suppress(KeyError):
            return self.peers["gate"].restarts
        return 0

    def teardown(self) -> None:
        if self.daemon is not None:
            self.daemon.close()
        self.peers.stop()
        if self._log_stream is not None:
            with contextlib.suppress(Exception):
                self._log_stream.close()
