"""The calibration target: a symmetric circle grid; plus a simulated pair of captures of it.

`render_visible_target` draws the printable pattern (dark circles on white). `simulate_captures`
is the simulator side of the thermal calibration boundary: the same target seen by a thermal
camera through a known homography, heated dots, the blackbody at its set point and sensor noise,
so calibrate-thermal and the hardware-in-the-loop suite run without a bench.
"""

from __future__ import annotations

import cv2
import numpy as np

from provisioning.thermal_calibrate import c_to_ck


def grid_points(grid: tuple[int, int], origin: tuple[float, float],
                spacing: float) -> np.ndarray:
    cols, rows = grid
    return np.array([(origin[0] + c * spacing, origin[1] + r * spacing)
                     for r in range(rows) for c in range(cols)], dtype=np.float64)


def render_visible_target(size: tuple[int, int] = (640, 480), grid: tuple[int, int] = (5, 4),
                          spacing: float = 70.0, radius: int = 16) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """(grey image, circle centres) of the target centred in a w x h visible frame."""
    w, h = size
    cols, rows = grid
    origin = ((w - (cols - 1) * spacing) / 2, (h - (rows - 1) * spacing) / 2)
    pts = grid_points(grid, origin, spacing)
    img = np.full((h, w), 255, np.uint8)
    for x, y in pts:
        cv2.circle(img, (round(x), round(y)), radius, 0, -1, lineType=cv2.LINE_AA)
    return img, pts


def simulate_captures(homography: np.ndarray, *, visible_size: tuple[int, int] = (640, 480),
                      thermal_size: tuple[int, int] = (320, 240), grid: tuple[int, int] = (5, 4),
                      ambient_c: float = 22.0, dot_c: float = 40.0, blackbody_c: float = 35.0,
                      blackbody_roi: tuple[int, int, int, int] = (270, 180, 30, 30),
                      noise_c: float = 0.05, captures: int = 3,
                      seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """(visible grey image, thermal uint16 centikelvin frames) of the target and blackbody."""
    rng = np.random.default_rng(seed)
    visible, pts = render_visible_target(visible_size, grid)
    tw, th = thermal_size
    base = np.full((th, tw), c_to_ck(ambient_c), np.float64)
    mapped = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), homography).reshape(-1, 2)
    scale = float(np.sqrt(abs(np.linalg.det(homography[:2, :2]))))
    radius = max(3, round(16 * scale))
    dots = np.zeros((th * 8, tw * 8), np.uint8)  # draw at 8x, then area-average: sub-pixel
    for x, y in mapped:
        cv2.circle(dots, (round(x * 8 + 3.5), round(y * 8 + 3.5)), radius * 8, 255, -1)
    cover = cv2.resize(dots.astype(np.float64) / 255.0, (tw, th), interpolation=cv2.INTER_AREA)
    base += cover * (c_to_ck(dot_c) - c_to_ck(ambient_c))
    x, y, w, h = blackbody_roi
    base[y:y + h, x:x + w] = c_to_ck(blackbody_c)
    frames = [np.clip(np.round(base + rng.normal(0, noise_c * 100, base.shape)), 0,
                      65535).astype(np.uint16) for _ in range(captures)]
    return visible, frames
