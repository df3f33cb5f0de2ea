"""The real daemon tells its board the truth: started with no gate controller it logs
`gate_link_down_at_start` and the board's health names the gate as unreachable since the
start (the badge is not live); today's counts on the board survive a daemon restart (the
store closed and reopened from disk)."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog
from helpers.devices import daemon_device

from edge.daemon import Daemon
from foundation.clock import SystemClock
from foundation.peers import wait_for
from foundation.settings import load_settings

pytestmark = pytest.mark.integration


def build(settings_file: Path, engine=None) -> Daemon:
    from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
    from edge.screening.synth_source import SyntheticScene

    scene = SyntheticScene(SceneRenderer(synthetic_calibration((640, 480), (160, 120), seed=3),
                                         default_face_photos(), seed=3), SystemClock(), fps=8)
    return Daemon.build(load_settings(settings_file), SystemClock(), source=scene,
                        engine=engine)


def test_no_gate_controller_at_start_is_logged_and_on_the_board_counts_kept(
        tmp_path: Path, installed_model_dir: Path) -> None:
    zone = [(0.3125, 0.1875), (0.6875, 0.1875), (0.6875, 0.875), (0.3125, 0.875)]
    settings_file, _ = daemon_device(tmp_path, installed_model_dir,
                                     lanes={"lanes": [{"lane_id": "A", "zone": zone}]})
    daemon = build(settings_file)  # no gate controller is started
    engine = daemon.engine
    try:
        with structlog.testing.capture_logs() as logs:
            daemon.start_thread()
            wait_for(lambda: "since the start" in str(daemon.board.snapshot()["health"]), 15,
                     "the board never said why the gate is down")
            wait_for(lambda: any(e["event"] == "gate_link_down_at_start" for e in logs), 10,
                     "no gate_link_down_at_start event")
        health = daemon.board.snapshot()["health"]
        assert health["live"] is False and health["gate"] == "down"
        gate = next(p for p in health["problems"] if p["what"] == "gate")
        assert "since the start" in gate["message"] and "by hand" in gate["message"]
        assert daemon.health()["gate"]["state"] == "down"
        daemon.board.record_count("refused", 2)
        daemon.board.record_count("enrolled")
    finally:
        daemon.close()
    again = build(settings_file, engine)  # the daemon restarted
    try:
        counts = again.board.snapshot()["counts"]
        assert counts["refused"] == 2 and counts["enrolled"] == 1
    finally:
        again.close()
