"""The hardware-in-the-loop suite itself: hw.toml parsing, and a run that names "real" devices
(a video file, a thermal folder, a board on a pty) writes JUnit XML and a summary that say so."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from gate_controller.drivers.relay_board_sim import RelayBoardSim
from provisioning.target import simulate_captures
from provisioning.thermal_calibrate import calibrate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hw_tests"))
from hw_support import HwConfigError, load_hw_config  # noqa: E402


def test_no_config_means_all_simulators() -> None:
    cfg = load_hw_config(None)
    assert cfg.camera is None and cfg.thermal is None and cfg.gate is None
    assert not cfg.gpu.expected


def test_example_config_is_valid() -> None:
    cfg = load_hw_config(ROOT / "hw_tests" / "hw.example.toml")
    assert cfg.camera.source == "/dev/video0" and cfg.gpu.expected
    assert cfg.thermal.calibration.is_absolute()  # resolved beside the hw.toml


@pytest.mark.parametrize("text, where", [
    ("[camera]\nsorce = '/dev/video0'\n", "camera"),
    ("[gate]\nport = '/dev/ttyUSB0'\nbaud = 3\n", "gate.baud"),
    ("[gpu\n", "not valid TOML"),
    ("[thermal]\nsource = '/dev/video2'\n", "thermal.calibration"),
])
def test_bad_config_names_the_field(tmp_path: Path, text: str, where: str) -> None:
    f = tmp_path / "hw.toml"
    f.write_text(text)
    with pytest.raises(HwConfigError, match=where.replace(".", r"\.")):
        load_hw_config(f)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(HwConfigError, match="not found"):
        load_hw_config(tmp_path / "nope.toml")


@pytest.mark.integration
def test_run_against_named_devices_reports_them(tmp_path: Path) -> None:
    video = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for i in range(40):
        img = np.full((120, 160, 3), 30, np.uint8)
        cv2.rectangle(img, (i * 3, 20), (i * 3 + 20, 60), (255, 255, 255), -1)
        writer.write(img)
    writer.release()
    h = np.array([[0.45, 0.0, 10.0], [0.0, 0.45, 15.0], [0.0, 0.0, 1.0]])
    visible, frames = simulate_captures(h, captures=3)
    from edge.screening.calibration import save_calibration

    save_calibration(calibrate(visible, frames, grid=(5, 4), blackbody_c=35.0).calibration,
                     tmp_path / "cal.json")
    thermal = tmp_path / "thermal"
    thermal.mkdir()
    for i, f in enumerate(simulate_captures(h, captures=12, seed=4)[1]):
        cv2.imwrite(str(thermal / f"{i:03d}.png"), f)
    board = RelayBoardSim.start(channels=1)
    try:
        (tmp_path / "hw.toml").write_text(
            f'[camera]\nsource = "{video}"\nfps = 10\n\n'
            f'[thermal]\nsource = "{thermal}"\ncalibration = "cal.json"\n\n'
            f'[gate]\nport = "{board.device}"\nlanes = ["A"]\n')
        report = tmp_path / "report"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hw_tests",
             "--hw-config", str(tmp_path / "hw.toml"), "--hw-report", str(report),
             "-k", "not end_to_end"],
            cwd=ROOT, capture_output=True, text=True, timeout=240)
    finally:
        board.stop()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    suite = ET.parse(report / "junit.xml").getroot()
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in c.iter("property")}
             for name, c in cases.items()}
    assert props["test_frames_at_rate"]["part.camera"] == f"real ({video})"
    assert float(props["test_frames_at_rate"]["timing.fps"]) > 7
    assert props["test_relay_opens_and_closes"]["part.gate board"].startswith("real (")
    assert props["test_blackbody_stable_over_time"]["part.thermal"] == f"real ({thermal})"
    # parts that need a tester at the bench are skipped, not faked
    for name in ("test_recovers_from_unplug", "test_passage_input_is_read",
                 "test_fire_alarm_input_is_read"):
        assert cases[name].find("skipped") is not None, name
    summary = (report / "summary.md").read_text()
    assert str(tmp_path / "hw.toml") in summary and f"camera={video}" in summary
