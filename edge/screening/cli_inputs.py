"""What the `thermal` and `pad` commands read alike: the face detector and a calibrated pair.

`measure` takes a calibration, one thermal frame and one visible frame; both must be of the
sizes the calibration was made for, or the mapping between them means nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge.capture.thermal import read_thermal_file
from edge.screening.calibration import Calibration, CalibrationError, load_calibration
from edge.vision.types import Face
from foundation.settings import Settings

Detect = Callable[[np.ndarray], list[Face]]


def face_detector(settings: Settings) -> Detect:
    """The face engine's detector (loads onnxruntime only when faces are needed)."""
    from edge.vision.engine import FaceEngine

    return FaceEngine.from_settings(settings.vision).detect


def load_calibrated_pair(calibration_path: Path, thermal_path: Path, visible_path: Path
                         ) -> tuple[Calibration, np.ndarray, np.ndarray]:
    """(calibration, thermal centikelvin frame, visible BGR frame), sizes checked."""
    from edge.vision.imageio import load_image

    calibration = load_calibration(calibration_path)
    thermal = read_thermal_file(thermal_path)
    visible = load_image(visible_path)
    tw, th = calibration.thermal_size
    if thermal.shape != (th, tw):
        raise CalibrationError(f"thermal image {thermal_path} is {thermal.shape[1]}x"
                               f"{thermal.shape[0]} but the calibration is for {tw}x{th}: use a "
                               "frame from the calibrated thermal camera, or recalibrate")
    vw, vh = calibration.visible_size
    if visible.shape[:2] != (vh, vw):
        raise CalibrationError(f"visible image {visible_path} is {visible.shape[1]}x"
                               f"{visible.shape[0]} but the calibration is for {vw}x{vh}: use a "
                               "frame from the calibrated camera at its calibrated resolution")
    return calibration, thermal, visible
