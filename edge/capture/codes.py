"""Codes the visible camera sees: passenger-held keys shown as QR codes, read on their own thread.

`QrCodes.read(image)` finds QR codes with OpenCV (`cv2.QRCodeDetectorAruco`, which costs about
4 ms on a 640x480 frame without a code; the classic `cv2.QRCodeDetector` is tried as well when
a code was found but not decoded). `CodeWatcher` looks at the newest visible frame at most every
`interval_s` on a thread of its own (the gate decision never waits for it), and hands each code
to `submit(text, lane, "camera")`: the lane whose zone holds the code's centre (zones in
pixels, or a function giving them for each frame size), else the only lane, when
`accept(text)` says it is one (token mode passes only its own tokens on, so the boarding pass
a traveller holds up is ignored). A code that stays in view is handed over once, again only
after it has been out of view for `repeat_s`. Frames are read, never kept; codes
are never logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Protocol

import cv2
import numpy as np
import structlog

from edge.capture.source import Frame
from foundation.clock import Clock
from foundation.worker import Worker

log = structlog.get_logger(__name__)

MAX_CODE_CHARS = 256
ZonesFor = Callable[[int, int], Mapping[str, np.ndarray]]  # (width, height) -> lane zones
Code = tuple[str, tuple[float, float]]  # text, centre (x, y) in frame pixels
Submit = Callable[[str, str | None, str], bool]  # text, lane, source -> queued


class CodeReader(Protocol):
    def read(self, image: np.ndarray) -> list[Code]: ...


class FrameReader(Protocol):
    """edge.capture.reader.LatestFrameReader's consumer side."""

    def wait_frame(self, after_seq: int, timeout: float) -> Frame | None: ...


class QrCodes:
    """QR codes in a BGR (or grey) frame."""

    def __init__(self) -> None:
        self._aruco = cv2.QRCodeDetectorAruco()
        self._classic = cv2.QRCodeDetector()

    def read(self, image: np.ndarray) -> list[Code]:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        ok, texts, points, _ = self._aruco.detectAndDecodeMulti(grey)
        found = [(t, p) for t, p in zip(texts or (), points if ok else (), strict=False) if t]
        if not found and ok:  # seen, not decoded: the classic decoder, once
            text, corners, _ = self._classic.detectAndDecode(grey)
            found = [(text, corners)] if text and corners is not None else []
        out: list[Code] = []
        for text, corners in found:
            if len(text) <= MAX_CODE_CHARS:
                x, y = np.asarray(corners, np.float32).reshape(-1, 2).mean(axis=0)
                out.append((text, (float(x), float(y))))
        return out


class CodeWatcher(Worker):
    """Reads codes from the newest visible frame every `interval_s` (see the module doc)."""

    thread_name = "codes"

    def __init__(self, frames: FrameReader, codes: CodeReader, submit: Submit,
                 zones: Mapping[str, np.ndarray] | ZonesFor, clock: Clock, *,
                 interval_s: float = 0.2,
                 repeat_s: float = 3.0, accept: Callable[[str], bool] = lambda _t: True) -> None:
        super().__init__()
        self._frames = frames
        self._codes = codes
        self._submit = submit
        self._zones_for = zones if callable(zones) else None
        self._zones = {} if callable(zones) else self._polygons(zones)
        self._size: tuple[int, int] | None = None
        self._clock = clock
        self.interval_s = float(interval_s)
        self.repeat_s = float(repeat_s)
        self._accept = accept
        self._seen: dict[bytes, float] = {}
        self.scans = 0
        self.failures = 0

    @staticmethod
    def _polygons(zones: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {lane: np.asarray(z, np.float32).reshape(-1, 1, 2) for lane, z in zones.items()}

    def _fit(self, image: np.ndarray) -> None:
        """Zones given per frame size (relative ones): the pixels of this frame's size."""
        size = (int(image.shape[1]), int(image.shape[0]))
        if self._zones_for is not None and size != self._size:
            self._zones = self._polygons(self._zones_for(*size))
            self._size = size

    def lane_of(self, centre: tuple[float, float]) -> str | None:
        for lane, zone in self._zones.items():
            if cv2.pointPolygonTest(zone, centre, False) >= 0:
                return lane
        return next(iter(self._zones)) if len(self._zones) == 1 else None

    def scan(self, image: np.ndarray) -> int:
        """Look for codes in one frame; returns how many new ones were handed over."""
        now = self._clock.monotonic()
        self.scans += 1
        handed = 0
        self._fit(image)
        for text, centre in self._codes.read(image):
            if not self._accept(text):
                continue  # not one of ours (e.g. a boarding pass's own code)
            digest = hashlib.sha256(text.encode("utf-8", "replace")).digest()
            last = self._seen.get(digest)
            self._seen[digest] = now
            if last is not None and now - last <= self.repeat_s:
                continue  # still in view (or back within repeat_s): already handed over
            lane = self.lane_of(centre)
            if lane is None:
                log.info("code_outside_lanes")
                continue
            handed += int(self._submit(text, lane, "camera"))
        self._seen = {d: t for d, t in self._seen.items() if now - t <= self.repeat_s}
        return handed

    def _after_stop(self) -> None:
        self._seen.clear()

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            frame = self._frames.wait_frame(seq, self.interval_s)
            if frame is not None:
                seq = frame.seq
                try:
                    self.scan(frame.image)
                except Exception as exc:  # a bad frame never stops the watcher
                    self.failures += 1
                    log.warning("code_scan_failed", error=type(exc).__name__)
                del frame
            self._stop.wait(self.interval_s)
