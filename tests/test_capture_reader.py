"""Capture: newest frame only, reconnect with backoff, corrupt frames counted, real files."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture.opencv import ImageFolderSource, OpenCVSource
from edge.capture.reader import LatestFrameReader
from edge.capture.source import Capture, CaptureError, CorruptFrameError, check_image
from foundation.clock import SystemClock
from foundation.peers import wait_for


def img(value: int, w: int = 64, h: int = 48) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


class ScriptedSource:
    """Plays a script per connection: ints are frames, 'bad' is corrupt, 'end' ends."""

    name = "scripted"

    def __init__(self, sessions: list[list], fail_opens: int = 0) -> None:
        self.sessions = sessions
        self.fail_opens = fail_opens
        self.opens = 0
        self._items: list = []

    def open(self) -> None:
        if self.fail_opens > 0:
            self.fail_opens -= 1
            raise CaptureError("device not there")
        self._items = list(self.sessions[min(self.opens, len(self.sessions) - 1)])
        self.opens += 1

    def read(self) -> Capture | None:
        time.sleep(0.002)
        if not self._items:
            return None
        item = self._items.pop(0)
        if item == "bad":
            raise CorruptFrameError("garbled")
        return Capture(img(item))

    def close(self) -> None:
        pass


def test_check_image_rejects_bad_frames() -> None:
    for bad in (None, np.zeros((0, 0, 3), np.uint8), np.zeros((48, 64), np.uint8),
                np.zeros((48, 64, 3), np.float32), np.zeros((4, 4, 3), np.uint8)):
        with pytest.raises(CorruptFrameError):
            check_image(bad)
    assert check_image(img(1)).shape == (48, 64, 3)


def test_keeps_only_newest_and_counts_corrupt() -> None:
    src = ScriptedSource([[1, 2, "bad", 3, 4, "bad", 5]] + [[]] * 1000)
    reader = LatestFrameReader(src, SystemClock(), backoff_initial_s=0.05).start()
    try:
        wait_for(lambda: reader.stats().frames == 5, 5.0, "5 frames read")
        frame = reader.wait_frame(0, 1.0)
        assert frame is not None and int(frame.image[0, 0, 0]) == 5  # newest, not the first
        assert reader.wait_frame(frame.seq, 0.05) is None  # nothing newer
        stats = reader.stats()
        assert stats.corrupt == 2 and stats.frame_age_s is not None
    finally:
        reader.stop()


def test_reconnects_after_end_and_failed_opens() -> None:
    src = ScriptedSource([[1, 2], [3, 4], [5]], fail_opens=2)
    reader = LatestFrameReader(src, SystemClock(), backoff_initial_s=0.01,
                               backoff_max_s=0.05).start()
    try:
        wait_for(lambda: reader.stats().frames >= 5, 5.0, "5 frames read")
        stats = reader.stats()
        assert stats.reconnects >= 2 and stats.outages >= 2
        assert src.opens >= 3
    finally:
        reader.stop()


def test_video_file_plays_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50, (64, 48))
    for i in range(10):
        writer.write(img(20 * i))
    writer.release()
    reader = LatestFrameReader(OpenCVSource(str(path)), SystemClock(),
                               backoff_initial_s=0.01).start()
    try:
        # more than the file holds: it looped
        wait_for(lambda: reader.stats().frames >= 15, 5.0, "15 frames read")
        assert reader.stats().reconnects >= 1
    finally:
        reader.stop()


def test_device_vanishes_and_comes_back(tmp_path: Path) -> None:
    folder = tmp_path / "cam"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), img(10 * i))
    (folder / "3.png").write_bytes(b"not an image")
    src = ImageFolderSource(folder, fps=200)
    reader = LatestFrameReader(src, SystemClock(), backoff_initial_s=0.01,
                               backoff_max_s=0.05).start()
    try:
        wait_for(lambda: reader.stats().frames >= 3 and reader.stats().corrupt >= 1, 5.0,
                 "3 frames read and a corrupt one counted")
        hidden = tmp_path / "gone"
        folder.rename(hidden)  # the camera vanishes
        time.sleep(0.3)
        n = reader.stats().frames
        time.sleep(0.2)
        stats = reader.stats()
        assert stats.frames == n and not stats.connected and reader.thread_alive()
        assert not reader.healthy()
        hidden.rename(folder)  # and comes back
        n = reader.stats().frames
        wait_for(lambda: reader.stats().frames > n, 5.0, "frames again")
    finally:
        reader.stop()


def test_missing_device_path_is_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="does not exist"):
        OpenCVSource(str(tmp_path / "video0")).open()
    with pytest.raises(CaptureError, match="holds no images"):
        ImageFolderSource(tmp_path).open()


def test_network_stream_that_is_down_fails_fast() -> None:
    start = time.monotonic()
    src = OpenCVSource("rtsp://127.0.0.1:9/none", read_timeout_s=0.5)
    assert src.name == "opencv:stream"  # a URL (may hold credentials) is never logged
    with pytest.raises(CaptureError, match="could not open"):
        src.open()
    assert time.monotonic() - start < 5.0
