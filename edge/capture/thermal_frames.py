"""A radiometric thermal camera as a FrameSource, so a LatestFrameReader can run it.

`ThermalFrames` adapts screening's ThermalSource to the FrameSource protocol (thermal-only
captures). A file or folder is paced to `fps` (a device paces itself), so the reader thread
does not spin re-reading PNGs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.capture.source import Capture, Pacer


class ThermalFrames:
    _NO_IMAGE = np.zeros((0, 0, 3), np.uint8)

    def __init__(self, source: Any, fps: float | None = None) -> None:
        self._source = source
        self.name = "thermal"
        self._pacer = Pacer(fps if getattr(source, "kind", "device") != "device" else None)

    def open(self) -> None:
        self._source.open()

    def read(self) -> Capture | None:
        self._pacer.wait()
        frame = self._source.read()
        return None if frame is None else Capture(self._NO_IMAGE, frame)

    def close(self) -> None:
        self._source.close()
