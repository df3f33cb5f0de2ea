"""The capture boundary: the `FrameSource` protocol, the `Frame` it yields and its errors.

A source opens, reads one frame at a time and closes. `read()` returns None at the end of a
stream (file ended, device vanished); it raises `CorruptFrameError` for one unusable frame,
which the reader drops and counts; `CaptureError` when the source cannot be opened at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from foundation.errors import ConsentGateError


class CaptureError(ConsentGateError):
    """A camera could not be opened or read; the reader retries with backoff."""


class CorruptFrameError(CaptureError):
    """One frame was unusable (wrong shape, undecodable); it is dropped and counted."""


@dataclass(frozen=True)
class Capture:
    """What a source returns for one frame: visible BGR image, optional radiometric frame."""

    image: np.ndarray = field(repr=False)  # HxWx3 uint8 BGR
    thermal: np.ndarray | None = field(default=None, repr=False)  # HxW uint16 centikelvin


@dataclass(frozen=True)
class Frame:
    """A frame as the inference loop sees it (in memory only, never written anywhere)."""

    seq: int
    captured_mono: float  # Clock.monotonic() when the reader got it
    image: np.ndarray = field(repr=False)
    thermal: np.ndarray | None = field(default=None, repr=False)


class FrameSource(Protocol):
    """A camera, stream, file, folder or simulator."""

    name: str

    def open(self) -> None:
        """Open (or re-open) the source; raise CaptureError when it cannot be opened."""
        ...

    def read(self) -> Capture | None:
        """Next frame; None at end of stream or when the device is gone."""
        ...

    def close(self) -> None:
        ...


def check_image(image: object) -> np.ndarray:
    """Return a usable BGR uint8 image or raise CorruptFrameError saying why not."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise CorruptFrameError("empty frame")
    if image.dtype != np.uint8:
        raise CorruptFrameError(f"frame dtype {image.dtype}, expected uint8")
    if image.ndim == 2:
        raise CorruptFrameError("grey frame where a colour frame was expected")
    if image.ndim != 3 or image.shape[2] != 3:
        raise CorruptFrameError(f"frame shape {image.shape}, expected HxWx3")
    if image.shape[0] < 16 or image.shape[1] < 16:
        raise CorruptFrameError(f"frame {image.shape[1]}x{image.shape[0]} is too small")
    return image


class Pacer:
    """Sleeps so that frames come no faster than `fps` (for files and folders)."""

    def __init__(self, fps: float | None) -> None:
        self._period = 1.0 / fps if fps else 0.0
        self._next = 0.0

    def wait(self, stop: threading.Event | None = None) -> None:
        if not self._period:
            return
        now = time.monotonic()
        if self._next > now:
            if stop is not None:
                stop.wait(self._next - now)
            else:
                time.sleep(self._next - now)
            now = time.monotonic()
        self._next = max(self._next + self._period, now)
