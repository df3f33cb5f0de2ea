"""Image decoding refuses decompression bombs from the header, before decoding a pixel."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from edge.vision import imageio
from edge.vision.errors import ImageDecodeError


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height (the data would inflate to ~w*h*3 bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


def _jpeg_claiming(width: int, height: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.zeros((16, 24, 3), np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    at = data.index(b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("make", [_png_header_only, _jpeg_claiming])
def test_oversize_image_is_refused_before_decoding(monkeypatch, make):
    def must_not_decode(*_a, **_k):
        raise AssertionError("the decoder ran on a decompression bomb")

    monkeypatch.setattr(imageio.cv2, "imdecode", must_not_decode)
    with pytest.raises(ImageDecodeError, match="too large"):
        imageio.decode_image(make(9000, 9000))


@pytest.mark.parametrize("ext,progressive", [(".png", 0), (".jpg", 0), (".jpg", 1)])
def test_declared_size_matches_the_decoded_image(ext, progressive):
    image = np.full((37, 53, 3), 128, np.uint8)
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, progressive] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, image, params)
    assert ok
    assert imageio.declared_size(buf.tobytes()) == (53, 37)
    assert imageio.decode_image(buf.tobytes()).shape[:2] == (37, 53)


def test_unknown_or_truncated_headers_fall_back_to_the_decoder():
    assert imageio.declared_size(b"GIF89a....") is None
    assert imageio.declared_size(b"\xff\xd8\xff") is None
    with pytest.raises(ImageDecodeError, match="not an image"):
        imageio.decode_image(b"\xff\xd8\xff\xe0\x00\x10JFIF")
