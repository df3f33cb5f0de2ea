"""Face chips: the photos a synthetic scene walks through the lane (demo, tests, evaluation).

A *face chip* is a BGR image of CHIP_SIZE with the eyes at CHIP_EYES: `face_chip(image, eyes)`
warps any photo there; `default_face_photos()` makes one from scikit-image's astronaut (no face
engine, no shared data); `load_face_photos(folder, detect)` makes one per usable photo of a
folder, the eyes found by the face engine. `edge.screening.synth` renders them into scenes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.vision.types import Face
from foundation.errors import ConsentGateError

CHIP_SIZE = (256, 320)  # w, h
CHIP_EYES = np.array([[98.0, 140.0], [158.0, 140.0]])  # subject's right eye (image left), left
CHIP_IPD = float(CHIP_EYES[1, 0] - CHIP_EYES[0, 0])
# approximate nose and mouth corners in a chip (for truth landmarks only)
CHIP_LOWER = np.array([[128.0, 176.0], [104.0, 205.0], [152.0, 205.0]])

# scikit-image's astronaut photo (512x512): right eye, left eye, nose, mouth corners
ASTRONAUT_LANDMARKS = np.array([[200.1, 101.8], [247.1, 102.6], [220.4, 124.5],
                                [198.6, 142.8], [239.7, 143.6]], dtype=np.float32)

class SynthError(ConsentGateError):
    """A synthetic scene cannot be made (no usable face photo, bad placement)."""


def face_chip(image_bgr: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """Warp a photo so its eyes (right, left as seen in the image) land on CHIP_EYES."""
    src = np.asarray(eyes, dtype=np.float64).reshape(2, 2)
    d_src = src[1] - src[0]
    d_dst = CHIP_EYES[1] - CHIP_EYES[0]
    norm = float(np.hypot(*d_src))
    if norm < 4:
        raise SynthError("the eyes in a face photo are less than 4 pixels apart: use a larger "
                         "photo")
    scale = float(np.hypot(*d_dst)) / norm
    angle = math.atan2(d_dst[1], d_dst[0]) - math.atan2(d_src[1], d_src[0])
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    t = CHIP_EYES[0] - rot @ src[0]
    m = np.hstack([rot, t[:, None]])
    return cv2.warpAffine(image_bgr, m, CHIP_SIZE, flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


def default_face_photos() -> list[np.ndarray]:
    """One chip from scikit-image's astronaut photo (needs no face engine and no shared data)."""
    from skimage import data  # imported here: only the demo and tests need it

    image = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    return [face_chip(image, ASTRONAUT_LANDMARKS[:2])]


def load_face_photos(folder: Path | str, detect: Callable[[np.ndarray], list[Face]],
                     limit: int = 64) -> list[np.ndarray]:
    """Chips from the photos of `folder` (jpg/png), the eyes found by `detect` (the face
    engine); photos without exactly one clear face are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SynthError(f"face photo folder {folder} does not exist")
    chips: list[np.ndarray] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png") or len(chips) >= limit:
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        faces = detect(image)
        if len(faces) != 1:
            continue
        eyes = np.asarray(faces[0].landmarks, dtype=np.float64)[:2]
        if np.hypot(*(eyes[1] - eyes[0])) < 24:
            continue
        chips.append(face_chip(image, eyes))
    if not chips:
        raise SynthError(f"no photo in {folder} shows exactly one face large enough to use")
    return chips
