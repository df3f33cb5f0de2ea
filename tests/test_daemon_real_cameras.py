"""The daemon on a real camera's terms: a camera at another resolution than the lanes' pixel
zones stops the daemon with both resolutions named (never 0 presented without a word), and
thermal screening off (no thermal.source) is said at start and in /healthz."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.devices import daemon_device
from structlog.testing import capture_logs

from edge.capture.opencv import ImageFolderSource
from edge.daemon import Daemon
from foundation.clock import SystemClock
from foundation.settings import ZoneResolutionError, load_settings

pytestmark = pytest.mark.integration


def _folder(tmp_path: Path, width: int, height: int) -> Path:
    folder = tmp_path / "camera"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((height, width, 3), 60 + i, np.uint8))
    return folder


def test_zones_for_another_resolution_stop_the_daemon_and_thermal_off_is_said(
        tmp_path: Path, installed_model_dir: Path) -> None:
    folder = _folder(tmp_path, 1280, 720)
    zone = {"lane_id": "A", "zone": [[200, 90], [440, 90], [440, 420], [200, 420]],
            "zone_resolution": [640, 480]}  # drawn for 640x480
    settings_file, _ = daemon_device(
        tmp_path, installed_model_dir, lanes={"lanes": [zone]},
        capture={"visible_source": {"type": "folder", "path": str(folder)}, "fps": 10},
        thermal={"enabled": True})  # no thermal.source
    settings = load_settings(settings_file)
    assert settings.thermal.source is None
    with capture_logs() as logs:
        daemon = Daemon.build(settings, SystemClock())
    try:
        assert isinstance(daemon.reader.source, ImageFolderSource)
        off = [e for e in logs if e["event"] == "thermal_screening_off"]
        assert len(off) == 1 and off[0]["log_level"] == "warning"
        assert off[0]["reason"] == "thermal.source is not set"
        assert daemon.health()["thermal"] == {"state": "off",
                                              "reason": "thermal.source is not set"}
        daemon.start()
        with pytest.raises(ZoneResolutionError) as info:
            daemon.loop(until=daemon.clock.monotonic() + 20)
        said = str(info.value)
        assert "640x480" in said and "1280x720" in said and "lane A" in said
    finally:
        daemon.close()


def test_relative_zones_and_synthetic_thermal_report_thermal_on(
        tmp_path: Path, installed_model_dir: Path) -> None:
    settings_file, _ = daemon_device(tmp_path, installed_model_dir)  # synthetic scene + thermal
    with capture_logs() as logs:
        daemon = Daemon.build(load_settings(settings_file), SystemClock())
    try:
        assert daemon.health()["thermal"] == {"state": "on"}
        assert not [e for e in logs if e["event"] == "thermal_screening_off"]
    finally:
        daemon.close()
