"""The daemon with a separate radiometric thermal camera: `thermal.source` names a folder of
16-bit centikelvin PNGs and `thermal.calibration_file` maps visible to thermal pixels. The
visible camera is an image folder. Built through the daemon's own composition (no source or
engine handed in): a traveller standing at the gate with a fever reading is referred, one
with a normal reading passes, and the thermal reader really read the PNGs."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest
from helpers.devices import daemon_device

from edge.capture.thermal import write_thermal_file
from edge.daemon import Daemon
from edge.decisions.events import Kind
from edge.screening.calibration import save_calibration
from edge.screening.synth import (
    Person,
    SceneRenderer,
    default_face_photos,
    synthetic_calibration,
)
from foundation.clock import SystemClock
from foundation.settings import load_settings

pytestmark = pytest.mark.integration
ZONE = [(0.3125, 0.1875), (0.6875, 0.1875), (0.6875, 0.875), (0.3125, 0.875)]  # relative: 0..1


def cameras(tmp_path: Path, canthus_c: float) -> tuple[Path, Path, Path]:
    """Write one traveller standing at the gate as a visible folder + a thermal folder."""
    renderer = SceneRenderer(synthetic_calibration((640, 480), (160, 120), seed=3),
                             default_face_photos(), seed=3)
    visible, thermal = tmp_path / "visible", tmp_path / "thermal"
    visible.mkdir()
    thermal.mkdir()
    calibration = tmp_path / "thermal-calibration.json"
    save_calibration(renderer.calibration, calibration)
    person = Person(photo=0, x=320.0, y=215.0, face_width_px=170.0, canthus_c=canthus_c)
    for i in range(10):
        vis, th, _truth = renderer.render([person])
        assert th.dtype.name == "uint16"
        cv2.imwrite(str(visible / f"{i:03d}.png"), vis)
        write_thermal_file(thermal / f"{i:03d}.png", th)
    return visible, thermal, calibration


@pytest.mark.parametrize(("canthus_c", "expected"), [(39.2, Kind.REFERRED),
                                                      (36.6, Kind.THERMAL_PASS)])
def test_folder_thermal_camera_screens(tmp_path: Path, installed_model_dir: Path,
                                       canthus_c: float, expected: Kind) -> None:
    visible, thermal, calibration = cameras(tmp_path, canthus_c)
    settings_file, _ = daemon_device(
        tmp_path, installed_model_dir,
        capture={"visible_source": str(visible), "fps": 8},
        thermal={"enabled": True, "source": str(thermal),
                 "calibration_file": str(calibration), "fuse_frames": 3},
        lanes={"lanes": [{"lane_id": "A", "zone": ZONE}]})
    daemon = Daemon.build(load_settings(settings_file), SystemClock())
    events = []
    daemon.pipeline.bus.subscribe(events.append)
    thermal_kinds = {Kind.REFERRED, Kind.THERMAL_PASS, Kind.UNRELIABLE}
    try:
        assert daemon.thermal_reader is not None and daemon.pipeline.screener is not None
        assert daemon.reader.source.name == "folder:visible"
        daemon.start_thread()
        end = time.monotonic() + 30
        while not any(e.kind in thermal_kinds for e in events) and time.monotonic() < end:
            time.sleep(0.05)
        got = [e.kind for e in events if e.kind in thermal_kinds]
        assert got and got[0] is expected, got
        stats = daemon.thermal_reader.stats()
        assert stats.frames >= 3 and stats.corrupt == 0
    finally:
        daemon.close()
