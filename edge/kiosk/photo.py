"""Photo intake for enrolment: base64 uploads or kiosk camera frames -> good faces -> embeddings.

Up to MAX_PHOTOS images per traveller (the store enrols their mean); they must all show the same
person (`check_same_person`).

Sizes are checked before any decoding (base64 length, then decoded bytes) so an oversize upload
never reaches the image decoder. Decoded pixels and embeddings stay in memory for this one
request; nothing here writes, logs or returns an image.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from edge.kiosk.errors import (
    BadImageError,
    DifferentPeopleError,
    MultipleFacesError,
    NoCameraError,
    NoFaceError,
    PoorQualityError,
    TooManyPixelsError,
    UploadTooLargeError,
)
from edge.kiosk.services import CameraLike
from edge.vision.errors import ImageDecodeError
from edge.vision.imageio import MAX_PIXELS, declared_size, decode_image
from edge.vision.types import Face, FaceEngineLike, Quality

_DATA_URL = "base64,"
MAX_PHOTOS = 3  # enrolment images per traveller (uploads, or kiosk camera frames): their mean


def b64_limit(max_bytes: int) -> int:
    """Longest base64 text (with a data-URL prefix) that can hold `max_bytes`."""
    return 4 * ((max_bytes + 2) // 3) + 128


def limit_words(max_bytes: int) -> str:
    """The upload limit as staff read it: "8 MiB (8.4 MB)" (settings kiosk.max_upload_bytes)."""
    mib = max_bytes / 2**20
    binary = f"{mib:.0f} MiB" if max_bytes % 2**20 == 0 else (
        f"{mib:.1f} MiB" if mib >= 1 else f"{max_bytes / 1024:.0f} KiB")
    return f"{binary} ({max_bytes / 1e6:.1f} MB)"


def too_large(size: int, max_bytes: int) -> UploadTooLargeError:
    """The refusal of a photo of `size` bytes, naming its size and the kiosk's real limit."""
    return UploadTooLargeError(f"the photo is {size / 1e6:.1f} MB, over this kiosk's limit of "
                               f"{limit_words(max_bytes)} for one photo: take a smaller photo (a "
                               "lower resolution on the camera, or a phone's 'medium' size)")


def photo_bytes(photo_b64: str, max_bytes: int) -> bytes:
    """Decode a base64 (or data-URL) photo; 413 before decoding when it is too large."""
    text = photo_b64
    head = text[:128]
    if head.startswith("data:") and _DATA_URL in head:
        text = text[head.index(_DATA_URL) + len(_DATA_URL):]
    if len(text) > b64_limit(max_bytes):
        raise too_large(len(text) * 3 // 4, max_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadImageError("the photo did not arrive intact: choose the photo again") from None
    if len(data) > max_bytes:
        raise too_large(len(data), max_bytes)
    if not data:
        raise BadImageError("the photo is empty: choose a JPEG or PNG photo")
    return data


def too_many_pixels(width: int, height: int) -> TooManyPixelsError:
    return TooManyPixelsError(
        f"the photo is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), over "
        f"the kiosk's limit of {MAX_PIXELS / 1e6:.0f} megapixels: take it again at a lower "
        "resolution, or scale it down")


def decode_photo(data: bytes) -> np.ndarray:
    """Decode a photo; the pixel limit is checked on the header first (edge.vision.imageio),
    and named in the refusal."""
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise too_many_pixels(*size)
    try:
        return decode_image(data, name="photo")
    except ImageDecodeError:
        raise BadImageError("that file is not a photo the kiosk can read: use a JPEG or PNG "
                            "photo") from None


def camera_frame(camera: CameraLike | None) -> np.ndarray:
    if camera is None:
        raise NoCameraError("this kiosk has no camera configured: upload a photo instead")
    frame = camera.latest()
    if frame is None or not isinstance(frame, np.ndarray) or frame.size == 0:
        raise NoCameraError("the kiosk camera has no picture yet: check it is connected, "
                            "or upload a photo instead")
    return frame


class Feedback(TypedDict):
    """`Assessment.feedback()`: the kiosk's PhotoCheck response."""

    faces: int
    ok: bool
    advice: list[str]


@dataclass(frozen=True)
class Assessment:
    """The outcome of looking at a photo: the chosen face and its quality (no pixels)."""

    faces: int
    face: Face | None
    quality: Quality

    def feedback(self) -> Feedback:
        return {"faces": self.faces, "ok": self.quality.ok, "advice": list(self.quality.reasons)}


def assess(engine: FaceEngineLike, image: np.ndarray, min_face_px: int) -> Assessment:
    """Find the traveller's face and judge it; raises when there is no usable single face."""
    faces = engine.detect(image)
    if not faces:
        raise NoFaceError("no face found in the photo: the traveller should face the camera, "
                          "close enough to fill the frame")
    big = [f for f in faces if min(f.box[2], f.box[3]) >= min_face_px]
    if len(big) > 1:
        raise MultipleFacesError("more than one face in the photo: photograph the traveller "
                                 "alone")
    face = max(faces, key=lambda f: f.box[2] * f.box[3])
    return Assessment(faces=len(faces), face=face, quality=engine.quality(image, face))


def enrolment_embedding(engine: FaceEngineLike, image: np.ndarray, min_face_px: int) -> np.ndarray:
    """(512,) embedding of the one good face; PoorQualityError with advice otherwise."""
    result = assess(engine, image, min_face_px)
    if not result.quality.ok or result.face is None:
        raise PoorQualityError(result.quality.reasons or ("face the camera",))
    vectors = engine.embed(image, [result.face])
    embedding: np.ndarray = np.asarray(vectors, dtype=np.float32)[0]
    return embedding


def check_same_person(embeddings: Sequence[np.ndarray], threshold: float) -> None:
    """Several enrolment images must show one person: every pair at least at the 1:1
    verification threshold, else DifferentPeopleError (nothing is stored)."""
    vectors = [np.asarray(e, np.float64) / max(float(np.linalg.norm(e)), 1e-12)
               for e in embeddings]
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            if float(vectors[i] @ vectors[j]) < threshold:
                raise DifferentPeopleError("the photos do not all show the same person: take "
                                           "them again of the traveller alone")


def camera_embeddings(engine: FaceEngineLike, camera: CameraLike | None, frames: int,
                      min_face_px: int, *, spacing_s: float = 0.25,
                      sleep: Callable[[float], None] = time.sleep) -> list[np.ndarray]:
    """`frames` good frames of the kiosk camera, `spacing_s` apart, each embedded (at most 3
    tries a frame); PoorQualityError or NoFaceError with the last frame's advice otherwise."""
    out: list[np.ndarray] = []
    error: Exception | None = None
    for attempt in range(3 * frames):
        if attempt:
            sleep(spacing_s)
        image = camera_frame(camera)
        try:
            out.append(enrolment_embedding(engine, image, min_face_px))
        except (PoorQualityError, NoFaceError) as exc:
            error = exc
        del image
        if len(out) == frames:
            return out
    for vec in out:
        vec.fill(0.0)
    assert error is not None
    raise error
