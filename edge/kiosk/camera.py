"""Kiosk camera adapter: the newest frame of a capture reader, as `CameraLike.latest()`.

The daemon builds a `LatestFrameReader` over `kiosk.camera_source` and wraps it here. A frame
older than `max_age_s` is treated as no picture, so a frozen camera never enrols a stale face.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class _Frame(Protocol):
    @property
    def image(self) -> np.ndarray: ...


class _Reader(Protocol):
    def wait_frame(self, after_seq: int, timeout: float) -> _Frame | None: ...
    def stats(self) -> object: ...  # read for its `frame_age_s`, when it has one


class ReaderCamera:
    """`latest()` over edge.capture.reader.LatestFrameReader (or anything with its API)."""

    def __init__(self, reader: _Reader, *, wait_s: float = 1.0, max_age_s: float = 2.0) -> None:
        self._reader = reader
        self._wait_s = wait_s
        self._max_age_s = max_age_s

    def latest(self) -> np.ndarray | None:
        frame = self._reader.wait_frame(0, self._wait_s)
        if frame is None:
            return None
        age = getattr(self._reader.stats(), "frame_age_s", None)
        if age is not None and age > self._max_age_s:
            return None
        return frame.image
