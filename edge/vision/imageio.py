"""Image decoding for files and uploads; every failure is an ImageDecodeError with a cause."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.vision.errors import ImageDecodeError

MAX_PIXELS = 40_000_000  # refuse decompression bombs before they reach the detector


def decode_image(data: bytes, *, name: str = "upload") -> np.ndarray:
    """Decode JPEG/PNG/... bytes to a BGR uint8 array (EXIF orientation applied)."""
    if not data:
        raise ImageDecodeError(f"{name}: empty file; send a JPEG or PNG photo")
    buf = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageDecodeError(f"{name}: not an image OpenCV can read; send a JPEG or PNG photo")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageDecodeError(f"{name}: {image.shape[1]}x{image.shape[0]} is too large; "
                               "send a photo under 40 megapixels")
    return image


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file to BGR uint8; missing, empty or non-image files raise ImageDecodeError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageDecodeError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageDecodeError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageDecodeError(f"{path}: cannot read ({exc.strerror})") from None
    return decode_image(data, name=str(path))
