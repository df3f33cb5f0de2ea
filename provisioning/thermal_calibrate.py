"""Thermal calibration from captures: visible->thermal homography and the blackbody reference.

Inputs are captures of one scene holding a calibration target (a symmetric grid of circles:
dark on white for the visible camera, heated so they show warm in the thermal camera) and the
blackbody held at a known set point. The grid is found in both images (OpenCV's circle-grid
finder), put in the same row-major order, and a homography is fitted (RANSAC, then all inliers);
the residual is the reprojection error in thermal pixels. The blackbody is the largest uniform
region within a tolerance of the set point (or a given ROI); its offset from the set point and
its noise across captures are reported. The result is a `thermal-calibration/1` object
(edge.screening.calibration) with the residuals in its provenance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from provisioning.errors import CalibrationError

if TYPE_CHECKING:
    from edge.screening.calibration import Calibration

CK_PER_C = 100.0
ZERO_C_CK = 27315.0


def c_to_ck(celsius: float) -> float:
    return celsius * CK_PER_C + ZERO_C_CK


def ck_to_c(ck: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(ck, dtype=np.float64) - ZERO_C_CK) / CK_PER_C


@dataclass(frozen=True)
class CalibrationResult:
    calibration: Calibration
    reprojection_rms_px: float
    reprojection_max_px: float
    points: int
    blackbody_mean_c: float
    blackbody_offset_c: float   # measured mean minus set point
    blackbody_noise_c: float    # spatial std inside the ROI (mean over captures)
    blackbody_drift_c: float    # std of the ROI mean across captures (0 for one capture)
    captures: int


def read_thermal(path: Path) -> np.ndarray:
    """A radiometric frame (uint16 centikelvin) from .npy or a 16-bit PNG/TIFF."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"thermal capture {path} not found: capture the target and the "
                               "blackbody first")
    if path.suffix.lower() == ".npy":
        try:
            frame: np.ndarray = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CalibrationError(f"thermal capture {path} is not a .npy array ({exc})") from None
    else:
        from edge.capture.thermal import ThermalFrameError, read_thermal_file

        try:
            return read_thermal_file(path)
        except ThermalFrameError as exc:
            raise CalibrationError(f"{exc}: save thermal captures as .npy or 16-bit "
                                   "PNG/TIFF in centikelvin") from None
    if frame.ndim != 2 or frame.dtype != np.uint16:
        raise CalibrationError(f"thermal capture {path} is {frame.dtype} {frame.shape}, not a "
                               "radiometric frame (HxW uint16 centikelvin)")
    return frame


def read_visible(path: Path) -> np.ndarray:
    path = Path(path)
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
    if image is None:
        raise CalibrationError(f"visible capture {path} is missing or not an image")
    return image


def _grid_order(points: np.ndarray, cols: int, rows: int) -> np.ndarray:
    """Row-major order, top-left first, independent of the finder's orientation."""
    pts = points.reshape(-1, 2)
    by_y = pts[np.argsort(pts[:, 1], kind="stable")]
    out = [row[np.argsort(row[:, 0], kind="stable")]
           for row in (by_y[r * cols:(r + 1) * cols] for r in range(rows))]
    return np.vstack(out)


def find_grid(gray8: np.ndarray, grid: tuple[int, int], what: str) -> np.ndarray:
    """Centres of a cols x rows circle grid (dark circles) in an 8-bit image, row-major."""
    cols, rows = grid
    found, centres = cv2.findCirclesGrid(
        gray8, (cols, rows), flags=cv2.CALIB_CB_SYMMETRIC_GRID | cv2.CALIB_CB_CLUSTERING)
    if not found or centres is None:
        raise CalibrationError(f"the {cols}x{rows} calibration grid was not found in the {what} "
                               "capture: make the whole target visible, in focus and (thermal) "
                               "warm, and check --grid")
    return _grid_order(np.asarray(centres, dtype=np.float64), cols, rows)


def thermal_to_8bit(frame: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Warm -> dark 8-bit image for the circle finder (robust contrast stretch)."""
    values = frame[~exclude] if exclude is not None else frame.ravel()
    lo, hi = np.percentile(values, [1.0, 99.5])
    if hi - lo < 10:  # < 0.1 C of contrast: no heated target in view
        raise CalibrationError("the thermal capture has no contrast: heat the calibration "
                               "target and capture again")
    scaled = np.clip((frame.astype(np.float64) - lo) / (hi - lo), 0.0, 1.0)
    inverted: np.ndarray = (255 - np.round(scaled * 255)).astype(np.uint8)
    return inverted


def find_blackbody(frame: np.ndarray, set_point_c: float,
                   tolerance_c: float = 1.0) -> tuple[int, int, int, int]:
    """ROI (x, y, w, h) inside the largest region within tolerance of the set point."""
    target = c_to_ck(set_point_c)
    mask = (np.abs(frame.astype(np.float64) - target) <= tolerance_c * CK_PER_C).astype(np.uint8)
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    if n <= 1:
        raise CalibrationError(f"no blackbody near {set_point_c:.1f} C in the thermal capture: "
                               "check it is on, in view and at its set point (--blackbody-c)")
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = (int(v) for v in stats[best])
    if area < 16 or w < 4 or h < 4:
        raise CalibrationError(f"no blackbody near {set_point_c:.1f} C in the thermal capture "
                               f"(the largest region at that temperature is {area} pixels; at "
                               "least 4x4 needed): check it is on, at its set point "
                               "(--blackbody-c) and close enough to the thermal camera")
    mx, my = max(1, w // 5), max(1, h // 5)  # stay off the edges
    return x + mx, y + my, w - 2 * mx, h - 2 * my


def calibrate(visible: np.ndarray, thermal_frames: list[np.ndarray], *, grid: tuple[int, int],
              blackbody_c: float, blackbody_roi: tuple[int, int, int, int] | None = None,
              canthus_to_core_offset_c: float = 0.0, now: float | None = None,
              max_rms_px: float = 2.0) -> CalibrationResult:
    """Fit the calibration; CalibrationError when captures are unusable or residuals too big."""
    from edge.screening.calibration import Calibration
    from edge.screening.calibration import CalibrationError as FileError

    if not thermal_frames:
        raise CalibrationError("no thermal captures given")
    shape = thermal_frames[0].shape
    if any(f.shape != shape for f in thermal_frames):
        raise CalibrationError("thermal captures differ in size: use one camera and mode")
    mean: np.ndarray = np.mean(np.stack([f.astype(np.float64) for f in thermal_frames]), axis=0)
    roi = blackbody_roi or find_blackbody(np.round(mean).astype(np.uint16), blackbody_c)
    bx, by, bw, bh = roi
    if bx < 0 or by < 0 or bx + bw > shape[1] or by + bh > shape[0] or bw < 2 or bh < 2:
        raise CalibrationError(f"blackbody ROI {list(roi)} is not inside the {shape[1]}x"
                               f"{shape[0]} thermal frame")
    exclude = np.zeros(shape, dtype=bool)
    exclude[max(0, by - bh):by + 2 * bh, max(0, bx - bw):bx + 2 * bw] = True
    thermal8 = thermal_to_8bit(mean, exclude)
    thermal8[exclude] = 255  # hide the blackbody from the grid finder
    vis_pts = find_grid(visible, grid, "visible")
    th_pts = find_grid(thermal8, grid, "thermal")
    h, inliers = cv2.findHomography(vis_pts, th_pts, cv2.RANSAC, 3.0)
    if h is None:
        raise CalibrationError("no homography fits the two grids: capture again with the "
                               "target flat and fully in view of both cameras")
    keep = inliers.ravel().astype(bool)
    if keep.sum() >= 4:
        refined, _ = cv2.findHomography(vis_pts[keep], th_pts[keep], 0)
        if refined is not None:
            h = refined
    h = h / h[2, 2]
    proj = cv2.perspectiveTransform(vis_pts.reshape(-1, 1, 2), h).reshape(-1, 2)
    err = np.linalg.norm(proj - th_pts, axis=1)
    rms, worst = float(np.sqrt(np.mean(err ** 2))), float(err.max())
    if rms > max_rms_px:
        raise CalibrationError(f"reprojection error {rms:.2f} px RMS is above {max_rms_px} px: "
                               "capture again with the target flat and still")
    rois = [f[by:by + bh, bx:bx + bw].astype(np.float64) for f in thermal_frames]
    means = np.array([ck_to_c(r.mean()) for r in rois])
    noise = float(np.mean([np.std(r) / CK_PER_C for r in rois]))
    bb_mean = float(means.mean())
    provenance = {
        "tool": "python -m provisioning calibrate-thermal",
        "calibrated_at": dt.datetime.fromtimestamp(now, tz=dt.UTC).isoformat()
        if now is not None else None,
        "grid": list(grid), "points": len(vis_pts), "captures": len(thermal_frames),
        "reprojection_rms_px": round(rms, 4), "reprojection_max_px": round(worst, 4),
        "blackbody_offset_c": round(bb_mean - blackbody_c, 4),
        "blackbody_noise_c": round(noise, 4),
        "blackbody_drift_c": round(float(means.std()), 4),
    }
    data = Calibration(visible_size=(int(visible.shape[1]), int(visible.shape[0])),
                       thermal_size=(int(shape[1]), int(shape[0])), homography=h,
                       blackbody_roi=(int(bx), int(by), int(bw), int(bh)),
                       blackbody_c=float(blackbody_c),
                       canthus_to_core_offset_c=float(canthus_to_core_offset_c),
                       provenance=provenance).to_dict()
    try:  # validate exactly as the daemon will when it loads the file
        calibration = Calibration.from_dict(data, source="new calibration")
    except FileError as exc:
        raise CalibrationError(str(exc)) from None
    return CalibrationResult(calibration=calibration, reprojection_rms_px=rms,
                             reprojection_max_px=worst, points=len(vis_pts),
                             blackbody_mean_c=bb_mean, blackbody_offset_c=bb_mean - blackbody_c,
                             blackbody_noise_c=noise, blackbody_drift_c=float(means.std()),
                             captures=len(thermal_frames))
