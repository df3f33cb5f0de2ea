"""Image decoding for files and uploads; every failure is an ImageDecodeError with a cause."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.vision.errors import ImageDecodeError

MAX_PIXELS = 40_000_000  # refuse decompression bombs before they reach the detector


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG header declares, read without decoding; None for other
    formats or when the header cannot be found."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _JPEG_SOF and i + 9 <= len(data):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7],
                                                                              "big")
        if length < 2:
            return None
        i += 2 + length
    return None


def decode_image(data: bytes, *, name: str = "upload") -> np.ndarray:
    """Decode JPEG/PNG/... bytes to a BGR uint8 array (EXIF orientation applied)."""
    if not data:
        raise ImageDecodeError(f"{name}: empty file; send a JPEG or PNG photo")
    size = declared_size(data)
    if size is not None and size[0] * size[1] > MAX_PIXELS:  # before a byte is decoded
        raise ImageDecodeError(f"{name}: {size[0]}x{size[1]} is too large; "
                               "send a photo under 40 megapixels")
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
