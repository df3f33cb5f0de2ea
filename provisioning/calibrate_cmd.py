"""`calibrate-thermal`: fit and write the thermal calibration from captures; report residuals.

    python -m provisioning calibrate-thermal --dir DIR --visible target.png \
        --thermal t1.npy t2.npy t3.npy --blackbody-c 35 [--grid 5x4] [--blackbody-roi x,y,w,h]

Writes `thermal-calibration/1` JSON (default DIR/thermal-calibration.json) and points the
device's settings at it. Refuses (exit 1) when the grid or blackbody cannot be found or the
reprojection error is above --max-rms-px.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import structlog
from rich.table import Table

from foundation.clock import SystemClock
from provisioning.common import add_device_args, console, device_from_args, progress_bar, start
from provisioning.device import update_settings
from provisioning.errors import CalibrationError
from provisioning.thermal_calibrate import calibrate, read_thermal, read_visible

log = structlog.get_logger(__name__)


def _pair(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("expected COLSxROWS, e.g. 5x4") from None
    if cols < 2 or rows < 2:
        raise argparse.ArgumentTypeError("the grid needs at least 2x2 circles")
    return cols, rows


def _roi(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected x,y,w,h in thermal pixels") from None
    return x, y, w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_device_args(parser)
    parser.add_argument("--visible", type=Path, required=True,
                        help="visible-camera capture of the circle-grid target")
    parser.add_argument("--thermal", type=Path, nargs="+", required=True,
                        help="thermal captures (.npy or 16-bit PNG/TIFF, centikelvin) of the "
                             "heated target and the blackbody")
    parser.add_argument("--blackbody-c", type=float, required=True,
                        help="the blackbody's set point, degrees C")
    parser.add_argument("--grid", type=_pair, default=(5, 4), help="circles COLSxROWS (5x4)")
    parser.add_argument("--blackbody-roi", type=_roi, default=None,
                        help="x,y,w,h of the blackbody in thermal pixels (default: found)")
    parser.add_argument("--canthus-offset-c", type=float, default=0.0,
                        help="added to the canthus temperature to estimate core temperature")
    parser.add_argument("--max-rms-px", type=float, default=2.0,
                        help="refuse a fit with a larger reprojection error (thermal px)")
    parser.add_argument("--out", type=Path, default=None,
                        help="calibration file (default DIR/thermal-calibration.json)")


def run(args: argparse.Namespace) -> int:
    from edge.screening.calibration import save_calibration

    start(args)
    device = device_from_args(args)
    out = console()
    with progress_bar(out) as progress:
        task = progress.add_task("reading captures", total=len(args.thermal) + 2)
        visible = read_visible(args.visible)
        progress.advance(task)
        frames = []
        for path in args.thermal:
            frames.append(read_thermal(path))
            progress.advance(task)
        result = calibrate(visible, frames, grid=args.grid, blackbody_c=args.blackbody_c,
                           blackbody_roi=args.blackbody_roi,
                           canthus_to_core_offset_c=args.canthus_offset_c,
                           now=SystemClock().now(), max_rms_px=args.max_rms_px)
        progress.advance(task)
    target = (args.out or device.layout.root / "thermal-calibration.json").resolve()
    save_calibration(result.calibration, target)
    if device.settings.thermal.calibration_file != target:
        update_settings(device, {"thermal": {"calibration_file": target}})
    log.info("thermal_calibrated", points=result.points, captures=result.captures,
             rms_px=round(result.reprojection_rms_px, 3))
    table = Table(title="thermal calibration")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("grid points matched", str(result.points))
    table.add_row("reprojection error RMS (thermal px)", f"{result.reprojection_rms_px:.3f}")
    table.add_row("reprojection error max (thermal px)", f"{result.reprojection_max_px:.3f}")
    table.add_row("blackbody ROI (x,y,w,h)", ",".join(map(str, result.calibration.blackbody_roi)))
    table.add_row("blackbody mean - set point (C)", f"{result.blackbody_offset_c:+.3f}")
    table.add_row("blackbody noise in ROI (C)", f"{result.blackbody_noise_c:.3f}")
    table.add_row("blackbody drift across captures (C)", f"{result.blackbody_drift_c:.3f}")
    out.print(table)
    out.print(f"calibration written to {target}")
    if abs(result.blackbody_offset_c) > 0.5:
        out.print("warning: the blackbody reads more than 0.5 C off its set point; check its "
                  "emissivity setting and that it has stabilised")
    return 0


__all__ = ["CalibrationError", "add_arguments", "run"]
