"""Daemon faults with real processes on loopback: the gate controller dies -> lanes manual and
no grant is sent; the camera file ends -> capture reconnects and the daemon keeps going."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.devices import daemon_device

from edge.capture.opencv import OpenCVSource
from edge.daemon import Daemon
from edge.decisions.events import Kind
from foundation.clock import SystemClock
from foundation.peers import Peer, gate_controller_argv, wait_for
from foundation.settings import load_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def synthetic_daemon(tmp_path: Path, model_dir: Path, engine=None):
    from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
    from edge.screening.synth_source import SyntheticScene

    zone = [(0.3125, 0.1875), (0.6875, 0.1875), (0.6875, 0.875), (0.3125, 0.875)]  # relative
    settings_file, _ = daemon_device(tmp_path, model_dir,
                                 lanes={"lanes": [{"lane_id": "A", "zone": zone}]})
    settings = load_settings(settings_file)
    scene = SyntheticScene(SceneRenderer(synthetic_calibration((640, 480), (160, 120), seed=3),
                                         default_face_photos(), seed=3), SystemClock(), fps=8)
    daemon = Daemon.build(settings, SystemClock(), source=scene, engine=engine)
    return settings_file, scene, daemon


def test_gate_controller_dies_lanes_manual_no_grants(tmp_path: Path,
                                                      installed_model_dir: Path) -> None:
    settings_file, scene, daemon = synthetic_daemon(tmp_path, installed_model_dir)
    gate = Peer("gate controller", gate_controller_argv(settings_file), tmp_path / "gate.log",
                cwd=ROOT).start()
    events = []
    daemon.pipeline.bus.subscribe(events.append)
    lane = daemon.pipeline.lanes["A"].machine
    try:
        daemon.start_thread()
        wait_for(lambda: lane.state.value == "idle", 30, "the gate controller never answered")
        assert daemon.health()["gate_controller"] == "up"
        # enrol the astronaut, then the controller dies before they walk up
        import time as _t

        chip = scene.renderer.photos[0]
        consent = daemon.store.grant_consent("T1REF", "boarding", "T1 today", _t.time() + 600,
                                             actor="test")
        probe = daemon.engine.embed(chip, daemon.engine.detect(chip)[:1])
        daemon.store.enrol(consent.consent_id, [probe[0]], daemon.engine.embedder_name,
                           actor="test")
        gate.kill()  # SIGKILL, and the launcher does not bring it back (yet)
        killed = time.monotonic()
        wait_for(lambda: lane.state.value == "manual", 5, "lanes did not go manual")
        assert time.monotonic() - killed < 3.0
        assert daemon.board.snapshot()["lanes"][0]["state"] == "manual"
        opens_before = daemon.metrics.gate_commands.value(cmd="open")
        walk = scene.walk(0, 36.6, approach_s=1.0, dwell_s=3.0)
        wait_for(lambda: scene.done(walk), 15, "walk did not finish")
        assert daemon.metrics.frames.value() > 0
        assert daemon.metrics.gate_commands.value(cmd="open") == opens_before
        assert not any(e.kind is Kind.GRANTED for e in events)
        assert any(e.kind is Kind.MANUAL for e in events)
        health = daemon.health()
        assert health["status"] == "degraded" and health["gate_controller"] == "down"
        # the launcher brings the gate controller back: the lane is automatic again
        gate.start(wait=False)
        wait_for(lambda: lane.state.value == "idle" and daemon.health()["gate_controller"]
                 == "up", 30, "the lane came back when the gate controller did", peers=[gate])
    finally:
        daemon.close()
        gate.kill()


def test_camera_file_ends_reconnects_no_crash(tmp_path: Path, installed_model_dir: Path) -> None:
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 20, (320, 240))
    for i in range(8):
        writer.write(np.full((240, 320, 3), 40 + 10 * i, np.uint8))
    writer.release()
    kiosk_cam = tmp_path / "kiosk-cam"
    kiosk_cam.mkdir()
    cv2.imwrite(str(kiosk_cam / "0.png"), np.full((240, 320, 3), 99, np.uint8))
    settings_file, _ = daemon_device(tmp_path, installed_model_dir, thermal={"enabled": False})
    settings = load_settings(settings_file)
    settings = settings.model_copy(update={"kiosk": settings.kiosk.model_copy(
        update={"camera_source": str(kiosk_cam)})})
    daemon = Daemon.build(settings, SystemClock(), source=OpenCVSource(str(clip)))
    try:
        daemon.start_thread()
        # the kiosk's enrolment camera is a second reader (a folder here)
        camera = daemon.app.state.kiosk.services.camera
        wait_for(lambda: camera.latest() is not None, 10, "kiosk camera gave no frame")
        image = camera.latest()
        assert image is not None and int(image[0, 0, 0]) == 99
        wait_for(lambda: daemon.reader.stats().reconnects >= 2, 20, "no reconnect")
        n = daemon.metrics.frames.value()
        wait_for(lambda: daemon.metrics.frames.value() > n + 5, 10, "loop stopped")
        assert daemon._thread is not None and daemon._thread.is_alive()
        clip.unlink()  # the camera vanishes: outages, still no crash
        time.sleep(1.5)
        assert daemon._thread.is_alive() and daemon.reader.thread_alive()
        assert not daemon.health()["capture"]["connected"] or \
            daemon.health()["capture"]["frame_age_s"] > 0.5
    finally:
        daemon.close()
