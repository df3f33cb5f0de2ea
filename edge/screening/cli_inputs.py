"""What the `thermal` and `pad` commands share: how a subcommand runs, the face detector, a
calibrated pair, and `measure`'s arguments and report.

`measure` takes a calibration, one thermal frame and one visible frame; both must be of the
sizes the calibration was made for, or the mapping between them means nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from edge.capture.thermal import read_thermal_file
from edge.screening.calibration import Calibration, CalibrationError, load_calibration
from edge.vision.clilog import cli_logging
from edge.vision.types import Face
from foundation.settings import Settings, load_settings

Detect = Callable[[np.ndarray], list[Face]]
Reading = TypeVar("Reading", bound=Mapping[str, object])
Action = Callable[[argparse.Namespace, Settings], int]


def run_action(args: argparse.Namespace, actions: Mapping[str, Action], chosen: str) -> int:
    """Load the settings of --config, then run the chosen subcommand's action under the
    commands' logging (--verbose: engine events to stderr)."""
    settings = load_settings(args.config)
    action = actions[chosen]
    with cli_logging(args.verbose, settings.logging.json_logs):
        return action(args, settings)


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


def add_pair_arguments(measure: argparse.ArgumentParser) -> None:
    """`measure`'s inputs: one visible + thermal pair, its calibration, settings, --json."""
    measure.add_argument("--visible", required=True, type=Path, help="visible image (BGR photo)")
    measure.add_argument("--thermal", required=True, type=Path,
                         help="16-bit centikelvin PNG/TIFF")
    measure.add_argument("--calibration", required=True, type=Path,
                         help="thermal-calibration/1 JSON")
    measure.add_argument("--config", type=Path,
                         help="settings TOML (default: embedded defaults)")
    measure.add_argument("--json", action="store_true", help="print JSON")


def print_faces(items: Sequence[Reading], describe: Callable[[Reading], str], visible: Path,
                as_json: bool) -> int:
    """`measure`'s report: {"faces": items} as one JSON line, or a line a face ("face I: box B"
    and what `describe` says of it); exit status 1, with an error line, when no face was found."""
    if as_json:
        print(json.dumps({"faces": list(items)}))
    else:
        for i, item in enumerate(items):
            print(f"face {i}: box {item['box']}  {describe(item)}")
    if not items:
        print(f"error: {visible}: no face found in the visible image; nothing measured",
              file=sys.stderr)
        return 1
    return 0
