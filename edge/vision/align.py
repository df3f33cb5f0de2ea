"""Alignment of a face to the standard ArcFace 112x112 five-point template (similarity)."""

from __future__ import annotations

import cv2
import numpy as np

from edge.vision.types import Face

# Image-left eye, image-right eye, nose tip, image-left and image-right mouth corners.
ARCFACE_TEMPLATE = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float32)
CROP = 112


def similarity_matrix(landmarks: np.ndarray) -> np.ndarray:
    """2x3 similarity transform (rotation, uniform scale, shift) landmarks -> template."""
    src = np.asarray(landmarks, np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(src, ARCFACE_TEMPLATE, method=cv2.LMEDS)
    if matrix is None:  # degenerate points: fall back to the eye line alone
        matrix, _ = cv2.estimateAffinePartial2D(src[:2], ARCFACE_TEMPLATE[:2])
    if matrix is None:
        raise ValueError("landmarks are degenerate; cannot align this face")
    return matrix


def align_face(image_bgr: np.ndarray, face: Face) -> np.ndarray:
    """The 112x112 BGR crop of `face` in template pose (kept in memory only)."""
    return cv2.warpAffine(image_bgr, similarity_matrix(face.landmarks), (CROP, CROP),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
