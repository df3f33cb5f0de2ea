"""End to end: a known (enrolled) face walks up to the gate and the gate opens.

A throwaway device is provisioned, the face is enrolled through the store, the gate controller
and a central run on loopback as processes (`LoopbackPeers`), and the real daemon runs
in-process. Simulator mode: the synthetic scene walks the astronaut photo's face through the
lane, and the gate controller drives the relay board simulator on a pty through the real
serial driver. Real mode: the camera of [camera], the board of [gate], and the tester of [e2e]
photo walks through when asked.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.consent.store import ConsentStore
from edge.vision.engine import FaceEngine
from foundation.clock import SystemClock
from foundation.peers import free_port
from gate_controller.client import GateClient
from gate_controller.drivers.relay_board_sim import RelayBoardSim
from provisioning.device import init_device
from provisioning.loopback import LoopbackPeers


def _known_face(hw_config) -> np.ndarray:
    if hw_config.e2e is not None:
        image = cv2.imread(str(hw_config.e2e.photo))
        assert image is not None, f"[e2e] photo {hw_config.e2e.photo} is not an image"
        return image
    from skimage import data  # the face the synthetic scene walks through

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def _enrol(settings, engine: FaceEngine, image: np.ndarray) -> None:
    faces = engine.detect(image)
    assert faces, "no face found in the enrolment photo"
    embedding = engine.embed(image, faces[:1])[0]
    clock = SystemClock()
    with ConsentStore.from_settings(settings, clock) as store:
        consent = store.grant_consent("HWTEST1", "boarding", "HW", clock.now() + 3600, "hw")
        store.enrol(consent.consent_id, [embedding], settings.vision.embedder, "hw")


@pytest.mark.integration
def test_known_face_walks_through_and_gate_opens(hw_config, hw, model_dir: Path,
                                                 tmp_path: Path, capsys) -> None:
    from edge.daemon import Daemon

    real_camera = hw_config.camera is not None
    if real_camera and hw_config.e2e is None:
        pytest.skip("real camera: set [e2e] photo = the walking tester's face photo")
    hw.part("camera", hw_config.camera.source if real_camera else None)
    board = None
    if hw_config.gate is not None:
        gate = {"driver": "serial_relay", "serial_port": hw_config.gate.port,
                "lanes": list(hw_config.gate.lanes)[:1], "serial_baud": hw_config.gate.baud}
        hw.part("gate board", hw_config.gate.port)
    else:
        board = RelayBoardSim.start(channels=1)
        gate = {"driver": "serial_relay", "serial_port": board.device, "lanes": ["A"]}
        hw.part("gate board", None)
    capture = ({"visible_source": hw_config.camera.source, "fps": hw_config.camera.fps}
               if real_camera else {"visible_source": "synthetic", "fps": 8})
    lane = gate["lanes"][0]
    device = init_device(tmp_path / "dev", "HW1", model_dir=model_dir, overrides={
        "capture": capture, "gate": gate, "kiosk": {"port": free_port()},
        "thermal": {"enabled": not real_camera or hw_config.thermal is not None},
        "lanes": {"lanes": [{"lane_id": lane, "zone": [[0, 0], [1, 0], [1, 1],
                                                       [0, 1]]}]},
    })
    engine = FaceEngine.from_settings(device.settings.vision)
    _enrol(device.settings, engine, _known_face(hw_config))
    daemon = None
    try:
        with LoopbackPeers(device) as peers:
            g = peers.device.settings.gate
            watcher = GateClient.from_settings(g, "daemon", timeout_ms=1000)
            try:
                daemon = Daemon.build(peers.device.settings, SystemClock(), engine=engine)
                start = time.monotonic()
                daemon.start_thread()
                if real_camera:
                    with capsys.disabled():
                        print("\n>>> the enrolled tester WALKS UP to the gate now (60 s)")
                opened_at = None
                deadline = start + (60 if real_camera else 40)
                while time.monotonic() < deadline and opened_at is None:
                    event = watcher.next_event(200)
                    if (event is not None and getattr(event, "event", "") == "state"
                            and event.lane == lane and event.state == "open"):
                        assert event.reason == "grant", f"gate opened by {event.reason!r}"
                        opened_at = time.monotonic()
                assert opened_at is not None, "the gate never opened for the enrolled face"
                hw.timing("gate_open_after_start_s", opened_at - start)
                if board is not None:
                    deadline = time.monotonic() + 1.0
                    while not board.outputs[1] and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert board.outputs[1], "the relay board never saw the open command"
            finally:
                watcher.close()
                if daemon is not None:
                    daemon.close()
    finally:
        if board is not None:
            board.stop()
