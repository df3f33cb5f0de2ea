"""Quality gate: is this face good enough to embed? Reasons are words for the traveller."""

from __future__ import annotations

import cv2
import numpy as np

from edge.vision.align import align_face
from edge.vision.types import Face, Quality

TOO_SMALL = "move closer"
NOT_FRONTAL = "face the camera"
BLURRED = "hold still"


def yaw_ratio(landmarks: np.ndarray) -> float:
    """Horizontal nose offset from the eye midpoint, in units of the eye gap (0 = frontal)."""
    eye_l, eye_r, nose = landmarks[0], landmarks[1], landmarks[2]
    gap = float(np.linalg.norm(eye_r - eye_l))
    if gap < 1e-6:
        return float("inf")
    axis = (eye_r - eye_l) / gap
    mid = (eye_l + eye_r) / 2
    return abs(float(np.dot(nose - mid, axis))) / gap


def sharpness(image_bgr: np.ndarray, face: Face) -> float:
    """Variance of the Laplacian on the aligned 112x112 grey crop (scale-independent)."""
    grey = cv2.cvtColor(align_face(image_bgr, face), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey[16:104, 16:96], cv2.CV_64F).var())


def assess(image_bgr: np.ndarray, face: Face, *, min_face_px: int, max_yaw_ratio: float,
           min_sharpness: float) -> Quality:
    reasons = []
    if min(face.box[2], face.box[3]) < min_face_px:
        reasons.append(TOO_SMALL)
    if yaw_ratio(face.landmarks) > max_yaw_ratio:
        reasons.append(NOT_FRONTAL)
    if sharpness(image_bgr, face) < min_sharpness:
        reasons.append(BLURRED)
    return Quality(ok=not reasons, reasons=tuple(reasons))
