"""OpenCV frame sources: device index or path, RTSP/HTTP URL, video file; and image folders.

Network streams get OpenCV's open and read timeouts so a dead camera cannot block the reader
forever. Files and folders are paced to their frame rate (a reader on a file would otherwise
race through it) and end; the reader then re-opens them, so a file plays in a loop.

A failed `VideoCapture.read()` is not the end of a stream: FFmpeg answers one damaged packet
with one failed read and goes on with the next. So a failed read raises CorruptFrameError (the
reader drops and counts it, and re-opens only after many in a row), except at the real end of a
file (its frame count reached) and after a read that took the whole read timeout (the stream
stalled): those end the stream. Decoder log lines are silenced before the first open
(edge.capture.decoder_log).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from edge.capture.decoder_log import quiet_decoders
from edge.capture.source import Capture, CaptureError, CorruptFrameError, Pacer, check_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
_NETWORK_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")


def is_network(spec: str) -> bool:
    return spec.lower().startswith(_NETWORK_SCHEMES)


class OpenCVSource:
    """`cv2.VideoCapture` on a device index ("0"), device path, URL or video file."""

    def __init__(self, spec: str, *, read_timeout_s: float = 5.0,
                 pace_fps: float | None = None) -> None:
        self.spec = spec
        self.name = f"opencv:{spec}" if not is_network(spec) else "opencv:stream"
        self._read_timeout_s = float(read_timeout_s)
        self._read_timeout_ms = int(read_timeout_s * 1000)
        self._pace_fps = pace_fps
        self._cap: cv2.VideoCapture | None = None
        self._pacer = Pacer(None)
        self._is_file = False
        self.finite = False  # a video file: its end is not an outage (edge.capture.reader)
        self._file_frames = 0   # a video file's frame count (0: not a file, or unknown)
        self._read_back = 0     # reads of this file so far, good and failed

    def _target(self) -> int | str:
        return int(self.spec) if self.spec.isdigit() else self.spec

    def open(self) -> None:
        target = self._target()
        if isinstance(target, str) and not is_network(target) and not Path(target).exists():
            raise CaptureError(f"camera {target} does not exist: check capture.visible_source "
                               "and the cable")
        quiet_decoders()  # before FFmpeg's first open: it reads its log level then
        if is_network(self.spec):
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._read_timeout_ms,
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._read_timeout_ms]
            cap = cv2.VideoCapture(target, cv2.CAP_ANY, params)
        else:
            cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise CaptureError(f"could not open camera {self.name}: check the device or URL")
        self._cap = cap
        fps = self._pace_fps
        is_file = isinstance(target, str) and not is_network(target) and Path(target).is_file()
        if fps is None and is_file:
            fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        self._pacer = Pacer(fps if is_file or self._pace_fps else None)
        self._file_frames = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)) if is_file else 0
        self._is_file = is_file
        self.finite = is_file
        self._read_back = 0

    def read(self) -> Capture | None:
        if self._cap is None:
            raise CaptureError(f"camera {self.name} is not open")
        self._pacer.wait()
        started = time.monotonic()
        ok, image = self._cap.read()
        self._read_back += 1
        if not ok:
            return self._failed_read(time.monotonic() - started)
        return Capture(check_image(image))

    def _failed_read(self, took_s: float) -> Capture | None:
        """A failed read: the end of a file or a stalled stream, else one bad frame."""
        if self._is_file:
            if self._file_frames <= 0 or self._read_back > self._file_frames:
                return None  # the file ended (or says nothing of its length)
            raise CorruptFrameError("a frame of the video file could not be decoded")
        if took_s >= 0.9 * self._read_timeout_s:
            raise CaptureError(f"no frame from camera {self.name} within "
                               f"{self._read_timeout_s:g} s: re-opening it")
        raise CorruptFrameError("a frame could not be read or decoded")

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class ImageFolderSource:
    """Plays the images of a folder in name order at `fps`, then ends (the reader loops it)."""

    def __init__(self, folder: Path | str, *, fps: float = 10.0) -> None:
        self.folder = Path(folder)
        self.name = f"folder:{self.folder.name}"
        self.finite = True  # it ends and is played again (edge.capture.reader)
        self._fps = fps
        self._files: list[Path] = []
        self._index = 0
        self._pacer = Pacer(fps)

    def open(self) -> None:
        if not self.folder.is_dir():
            raise CaptureError(f"image folder {self.folder} does not exist")
        self._files = sorted(p for p in self.folder.iterdir()
                             if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise CaptureError(f"image folder {self.folder} holds no images "
                               f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._index = 0
        self._pacer = Pacer(self._fps)

    def read(self) -> Capture | None:
        if self._index >= len(self._files):
            return None
        path = self._files[self._index]
        self._index += 1
        self._pacer.wait()
        data = np.fromfile(path, dtype=np.uint8) if path.exists() else np.empty(0, np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if image is None:
            raise CorruptFrameError(f"{path.name} is not a readable image")
        return Capture(check_image(image))

    def close(self) -> None:
        self._files = []
