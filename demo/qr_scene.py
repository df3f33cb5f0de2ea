"""The synthetic camera with a QR code held up in it: the token-mode day's travellers show
their boarding key to the gate camera (a phone or the printed receipt, beside the face).

`ShownCodes` wraps a `SyntheticScene` (edge.screening.synth_source) and is a FrameSource
itself: `show_with_next_walk(text)` pastes the code's QR image (segno, 4 px a module: about
180 px, as a phone screen at arm's length) into the visible frames of the next walk, from
`from_s` to `to_s` after it starts. Everything else is the scene's own.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import segno

from edge.capture.source import Capture
from foundation.clock import Clock

CORNER = (455, 290)  # top-left of the code in the 640x480 frame: right of the face, low


class ShownCodes:
    def __init__(self, scene: Any, clock: Clock) -> None:
        self._scene = scene
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: tuple[np.ndarray, float, float] | None = None
        self._shown: list[tuple[np.ndarray, float, float]] = []  # image, from, to (monotonic)

    def __getattr__(self, name: str) -> Any:  # the scene's walks, renderer, photos, name...
        return getattr(self._scene, name)

    def show_with_next_walk(self, text: str, from_s: float = 0.2, to_s: float = 4.0) -> None:
        rows = np.array(list(segno.make(text, error="m").matrix_iter(scale=4, border=4)),
                        np.uint8)
        image = np.where(rows == 1, 0, 255).astype(np.uint8)
        with self._lock:
            self._pending = (image, from_s, to_s)

    def walk(self, *args: Any, **kwargs: Any) -> Any:
        w = self._scene.walk(*args, **kwargs)
        with self._lock:
            if self._pending is not None:
                image, start, end = self._pending
                self._shown.append((image, w.start + start, w.start + end))
                self._pending = None
        return w

    def read(self) -> Capture | None:
        capture = self._scene.read()
        if capture is None:
            return None
        now = self._clock.monotonic()
        with self._lock:
            self._shown = [s for s in self._shown if s[2] >= now]
            live = [s[0] for s in self._shown if s[1] <= now]
        if not live:
            return capture
        visible = capture.image.copy()
        code = live[-1]
        x, y = CORNER
        h, w = min(code.shape[0], visible.shape[0] - y), min(code.shape[1], visible.shape[1] - x)
        visible[y:y + h, x:x + w] = code[:h, :w, None]
        return Capture(visible, capture.thermal)

    def open(self) -> None:
        self._scene.open()

    def close(self) -> None:
        self._scene.close()
