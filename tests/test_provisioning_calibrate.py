"""`calibrate-thermal`: a known homography and blackbody are recovered; bad captures refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.provisioning import make_device, run_cli

from edge.screening.calibration import load_calibration
from foundation.settings import load_settings
from provisioning.errors import CalibrationError
from provisioning.target import simulate_captures
from provisioning.thermal_calibrate import calibrate

TRUE_H = np.array([[0.42, 0.012, 11.5], [-0.009, 0.41, 19.0], [1.2e-5, -0.8e-5, 1.0]])


def _write_captures(folder: Path, **kwargs) -> tuple[Path, list[Path]]:
    visible, frames = simulate_captures(TRUE_H, **kwargs)
    folder.mkdir(parents=True, exist_ok=True)
    vis_path = folder / "target.png"
    cv2.imwrite(str(vis_path), visible)
    paths = []
    for i, f in enumerate(frames):
        p = folder / (f"t{i}.npy" if i % 2 else f"t{i}.png")
        if p.suffix == ".npy":
            np.save(p, f)
        else:
            cv2.imwrite(str(p), f)
        paths.append(p)
    return vis_path, paths


def test_cli_writes_calibration_and_points_settings_at_it(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    vis, thermal = _write_captures(tmp_path / "cap")
    code, out, err = run_cli(["calibrate-thermal", "--dir", str(dev.layout.root), "--visible",
                              str(vis), "--thermal", *map(str, thermal), "--blackbody-c", "35"])
    assert code == 0, err
    assert "reprojection error RMS" in out
    target = dev.layout.root / "thermal-calibration.json"
    cal = load_calibration(target)
    assert load_settings(dev.layout.settings_file).thermal.calibration_file == target
    # the fitted mapping agrees with the true one across the frame, to a fraction of a pixel
    pts = np.array([[50, 40], [600, 60], [320, 240], [80, 440], [620, 460]], np.float64)
    want = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), TRUE_H).reshape(-1, 2)
    assert np.max(np.linalg.norm(cal.to_thermal(pts) - want, axis=1)) < 0.5
    x, y, w, h = cal.blackbody_roi
    assert x >= 270 and x + w <= 300 and y >= 180 and y + h <= 210  # inside the true patch
    assert cal.blackbody_c == 35.0
    assert cal.provenance["reprojection_rms_px"] < 0.3
    assert cal.provenance["captures"] == 3


def test_residuals_reported(tmp_path: Path) -> None:
    visible, frames = simulate_captures(TRUE_H, noise_c=0.1, captures=4, seed=2)
    r = calibrate(visible, frames, grid=(5, 4), blackbody_c=35.0, now=0.0)
    assert r.points == 20 and r.captures == 4
    assert 0 < r.reprojection_rms_px < 0.3
    assert abs(r.blackbody_offset_c) < 0.05
    assert 0.05 < r.blackbody_noise_c < 0.15  # the simulated sensor noise shows up


def test_refuses_blank_visible_capture(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    vis, thermal = _write_captures(tmp_path / "cap")
    cv2.imwrite(str(vis), np.full((480, 640), 255, np.uint8))
    code, _out, err = run_cli(["calibrate-thermal", "--dir", str(dev.layout.root), "--visible",
                               str(vis), "--thermal", str(thermal[0]), "--blackbody-c", "35"])
    assert code == 1 and "grid was not found in the visible" in err
    assert not (dev.layout.root / "thermal-calibration.json").exists()


def test_refuses_missing_blackbody() -> None:
    visible, frames = simulate_captures(TRUE_H, blackbody_c=35.0)
    with pytest.raises(CalibrationError, match=r"no blackbody near 30\.0"):
        calibrate(visible, frames, grid=(5, 4), blackbody_c=30.0)


def test_refuses_wrong_grid_size() -> None:
    visible, frames = simulate_captures(TRUE_H)
    with pytest.raises(CalibrationError, match="6x4 calibration grid"):
        calibrate(visible, frames, grid=(6, 4), blackbody_c=35.0)


def test_refuses_cold_target() -> None:
    visible, frames = simulate_captures(TRUE_H, dot_c=22.0, noise_c=0.0)
    with pytest.raises(CalibrationError):
        calibrate(visible, frames, grid=(5, 4), blackbody_c=35.0)


def test_refuses_non_radiometric_file(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    vis, _ = _write_captures(tmp_path / "cap")
    rgb = tmp_path / "colour.png"
    cv2.imwrite(str(rgb), np.zeros((240, 320, 3), np.uint8))
    code, _out, err = run_cli(["calibrate-thermal", "--dir", str(dev.layout.root), "--visible",
                               str(vis), "--thermal", str(rgb), "--blackbody-c", "35"])
    assert code == 1 and "16-bit" in err


def test_refuses_blackbody_roi_outside_frame() -> None:
    visible, frames = simulate_captures(TRUE_H)
    with pytest.raises(CalibrationError, match="not inside"):
        calibrate(visible, frames, grid=(5, 4), blackbody_c=35.0,
                  blackbody_roi=(310, 230, 20, 20))
