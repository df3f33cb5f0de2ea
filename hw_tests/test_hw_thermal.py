"""Thermal camera: frames are radiometric, and the blackbody reads stable over time.

Real mode: [thermal] source and calibration in hw.toml. Simulator mode: radiometric frames of
the calibration scene (heated target, blackbody at 35 C, sensor noise) played from a folder by
the real ThermalSource, with a calibration fitted from the same simulated bench.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture.thermal import ThermalSource, ck_to_c
from edge.screening.calibration import Calibration, load_calibration
from provisioning.target import simulate_captures
from provisioning.thermal_calibrate import calibrate

STABILITY_SECONDS = 3.0
MAX_ROI_STD_C = 0.1      # the blackbody's ROI mean may wander this much over the run
MAX_OFFSET_C = 1.0       # and read this far from its set point at most


@dataclass
class Thermal:
    source: str
    calibration: Calibration
    real: bool


@pytest.fixture
def thermal(hw_config, hw, tmp_path: Path) -> Thermal:
    t = hw_config.thermal
    if t is not None:
        hw.part("thermal", t.source)
        return Thermal(t.source, load_calibration(t.calibration), True)
    h = np.array([[0.45, 0.01, 12.0], [-0.01, 0.45, 16.0], [0.0, 0.0, 1.0]])
    visible, frames = simulate_captures(h, captures=3, seed=1)
    cal = calibrate(visible, frames, grid=(5, 4), blackbody_c=35.0).calibration
    folder = tmp_path / "thermal"
    folder.mkdir()
    _, live = simulate_captures(h, captures=30, seed=2, noise_c=0.08)
    for i, frame in enumerate(live):
        cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
    hw.part("thermal", None)
    return Thermal(str(folder), cal, False)


def test_frames_are_radiometric(thermal: Thermal, hw) -> None:
    source = ThermalSource(thermal.source)
    with source:
        start = time.monotonic()
        frames = [source.read() for _ in range(10)]
        took = time.monotonic() - start
    hw.timing("frame_ms", took / len(frames) * 1000)
    for f in frames:
        assert f.dtype == np.uint16 and f.ndim == 2
        assert (f.shape[1], f.shape[0]) == thermal.calibration.thermal_size
    stack = np.stack(frames)
    lo, hi = thermal.calibration.valid_range_ck
    saturated = float(np.mean((stack <= lo) | (stack >= hi)))
    median_c = float(ck_to_c(np.median(stack)))
    hw.timing("scene_median_c", median_c)
    assert saturated < 0.01, f"{saturated:.1%} of pixels saturated"
    assert -20.0 <= median_c <= 60.0, f"scene median {median_c:.1f} C: not radiometric?"
    assert float(np.std(stack.astype(np.float64))) > 0, "flat frames: the sensor is not imaging"


def test_blackbody_stable_over_time(thermal: Thermal, hw) -> None:
    cal = thermal.calibration
    x, y, w, h = cal.blackbody_roi
    means = []
    source = ThermalSource(thermal.source)
    with source:
        end = time.monotonic() + STABILITY_SECONDS
        while time.monotonic() < end:
            f = source.read()
            means.append(float(ck_to_c(f[y:y + h, x:x + w].astype(np.float64).mean())))
            if not thermal.real:
                time.sleep(0.1)  # a folder reads instantly; spread the reads over the window
    arr = np.array(means)
    hw.timing("blackbody_mean_c", float(arr.mean()))
    hw.timing("blackbody_std_c", float(arr.std()))
    hw.timing("frames", len(arr))
    assert len(arr) >= 10, "too few thermal frames over the stability window"
    assert arr.std() <= MAX_ROI_STD_C, f"blackbody wanders {arr.std():.3f} C"
    offset = float(np.max(np.abs(arr - cal.blackbody_c)))
    assert offset <= MAX_OFFSET_C, f"blackbody reads {offset:.2f} C off {cal.blackbody_c:g} C"
