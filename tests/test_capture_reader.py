"""Capture: newest frame only, reconnect with backoff, corrupt frames counted, real files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


@contextmanager
def reading(source: Capture, **options: Any) -> Iterator[LatestFrameReader]:
    """A LatestFrameReader of `source` on the system clock, started, and stopped however the
    block ends."""
    reader = LatestFrameReader(source, SystemClock(), **options).start()
    try:
        yield reader
    finally:
        reader.stop()


def test_check_image_rejects_bad_frames() -> None:
    for bad in (None, np.zeros((0, 0, 3), np.uint8), np.zeros((48, 64), np.uint8),
                np.zeros((48, 64, 3), np.float32), np.zeros((4, 4, 3), np.uint8)):
        with pytest.raises(CorruptFrameError):
            check_image(bad)
    assert check_image(img(1)).shape == (48, 64, 3)


def test_keeps_only_newest_and_counts_corrupt() -> None:
    src = ScriptedSource([[1, 2, "bad", 3, 4, "bad", 5]] + [[]] * 1000)
    with reading(src, backoff_initial_s=0.05) as reader:
        wait_for(lambda: reader.stats().frames == 5, 5.0, "5 frames read")
        frame = reader.wait_frame(0, 1.0)
        assert frame is not None and int(frame.image[0, 0, 0]) == 5  # newest, not the first
        assert reader.wait_frame(frame.seq, 0.05) is None  # nothing newer
        stats = reader.stats()
        assert stats.corrupt == 2 and stats.frame_age_s is not None


def test_reconnects_after_end_and_failed_opens() -> None:
    src = ScriptedSource([[1, 2], [3, 4], [5]], fail_opens=2)
    with reading(src, backoff_initial_s=0.01, backoff_max_s=0.05) as reader:
        wait_for(lambda: reader.stats().frames >= 5, 5.0, "5 frames read")
        stats = reader.stats()
        assert stats.reconnects >= 2 and stats.outages >= 2
        assert src.opens >= 3


def test_video_file_plays_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50, (64, 48))
    for i in range(10):
        writer.write(img(20 * i))
    writer.release()
    with reading(OpenCVSource(str(path)), backoff_initial_s=0.01) as reader:
        # more than the file holds: it looped
        wait_for(lambda: reader.stats().frames >= 15, 5.0, "15 frames read")
        assert reader.stats().reconnects >= 1


def test_device_vanishes_and_comes_back(tmp_path: Path) -> None:
    folder = tmp_path / "cam"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), img(10 * i))
    (folder / "3.png").write_bytes(b"not an image")
    src = ImageFolderSource(folder, fps=200)
    with reading(src, backoff_initial_s=0.01, backoff_max_s=0.05) as reader:
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


# -- issue 13: a corrupt frame in a file or a network stream ------------------------------------
BAD_FRAMES = (20, 30, 31, 40)  # zero-filled in place: 56 of 60 frames decode


def corrupt_clip(path: Path, frames: int = 60, fps: int = 50) -> Path:
    """A real MJPG AVI written by cv2.VideoWriter whose JPEG data of BAD_FRAMES is overwritten
    with zeros in the middle of the file (length and index untouched: a damaged transfer)."""
    import struct

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    for i in range(frames):
        frame = img(40 + 3 * i, 160, 120)
        cv2.putText(frame, str(i), (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 2)
        writer.write(frame)
    writer.release()
    data = bytearray(path.read_bytes())
    at = data.index(b"movi") + 4
    chunks = []
    while at + 8 <= len(data) and data[at:at + 4] != b"idx1":
        size = struct.unpack("<I", data[at + 4:at + 8])[0]
        if data[at:at + 4] == b"00dc":
            chunks.append((at + 8, size))
        at += 8 + size + (size & 1)
    assert len(chunks) == frames
    for k in BAD_FRAMES:
        start, size = chunks[k]
        data[start:start + size] = bytes(size)
    path.write_bytes(bytes(data))
    return path


class Tally:
    """Wraps a source and counts what each connection gave: good frames, corrupt ones."""

    def __init__(self, source) -> None:
        self.source, self.name = source, source.name
        self.per_open: list[dict[str, int]] = []

    def open(self) -> None:
        self.source.open()
        self.per_open.append({"good": 0, "corrupt": 0})

    def read(self):
        try:
            cap = self.source.read()
        except CorruptFrameError:
            self.per_open[-1]["corrupt"] += 1
            raise
        if cap is not None:
            self.per_open[-1]["good"] += 1
        return cap

    def close(self) -> None:
        self.source.close()


def serve_folder(folder: Path):
    """A plain HTTP server on a free loopback port serving `folder` (a network camera)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_corrupt_frame_is_dropped_and_counted(tmp_path: Path) -> None:
    clip = corrupt_clip(tmp_path / "clip.avi")
    # the real OpenCV source: each damaged frame is one CorruptFrameError, then the file goes on
    src = OpenCVSource(str(clip), pace_fps=500)
    src.open()
    good = bad = 0
    try:
        while True:
            try:
                if src.read() is None:
                    break
                good += 1
            except CorruptFrameError:
                bad += 1
    finally:
        src.close()
    assert (good, bad) == (60 - len(BAD_FRAMES), len(BAD_FRAMES))

    server = serve_folder(tmp_path)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
        for spec in (str(clip), url):  # a file, and the same bytes as a network stream
            tally = Tally(OpenCVSource(spec, read_timeout_s=5, pace_fps=200))
            with reading(tally, backoff_initial_s=0.01, max_corrupt_in_a_row=5) as reader:
                wait_for(lambda t=tally: len(t.per_open) >= 2, 20.0, "the clip played through")
                # one connection played the whole clip: no reconnect on a bad frame (the
                # network stream's end is 5 failed reads in a row, which re-open it)
                trailing = 5 if spec == url else 0
                assert tally.per_open[0] == {"good": 60 - len(BAD_FRAMES),
                                             "corrupt": len(BAD_FRAMES) + trailing}, spec
                stats = reader.stats()
                assert stats.corrupt >= len(BAD_FRAMES) and stats.frames >= 56
    finally:
        server.shutdown()
        server.server_close()


def test_a_run_of_unreadable_frames_reopens_the_stream() -> None:
    src = ScriptedSource([[1, "bad", 2] + ["bad"] * 10 + [3], [4, 5]] + [[]] * 1000)
    with reading(src, backoff_initial_s=0.01, max_corrupt_in_a_row=4) as reader:
        wait_for(lambda: reader.stats().frames >= 4, 5.0, "frames after the re-open")
        stats = reader.stats()
        assert stats.reconnects >= 1 and stats.outages >= 1
        assert stats.corrupt == 1  # the lone bad frame; the run of ten was an outage


NOISY_CHILD = """
import json, os, sys, time
from edge.capture.decoder_log import NativeStderrTap
from foundation.logs import configure_logging
tap = NativeStderrTap(interval_s=0.2)
tap.install()
configure_logging("info", json_logs=True)
import cv2
if sys.argv[2] == "raw":  # FFmpeg left at its default: a line on fd 2 per damaged frame
    cap = cv2.VideoCapture(sys.argv[1])
    for _ in range(80):
        cap.read()
    cap.release()
    os.write(2, b"[h264 @ 0x55d0c0ffee00] error while decoding MB 3 7, bytestream -5\\n")
    os.write(2, b"libfoo: something native\\n")
else:  # as the daemon runs it: quiet decoders, the real source and reader
    from edge.capture.opencv import OpenCVSource
    from edge.capture.reader import LatestFrameReader
    from foundation.clock import SystemClock
    reader = LatestFrameReader(OpenCVSource(sys.argv[1], pace_fps=200), SystemClock(),
                               max_corrupt_in_a_row=5).start()
    deadline = time.monotonic() + 20
    while reader.stats().reconnects < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    reader.stop()
tap.close()
"""


def _run_noisy(clip: Path, mode: str) -> tuple[list[dict], str]:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_LOG_LEVEL")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", NOISY_CHILD, str(clip), mode], env=env,
                          capture_output=True, timeout=120, check=True)
    lines = [ln for ln in done.stderr.decode().splitlines() if ln.strip()]
    events = [json.loads(ln) for ln in lines]  # every line of the log is JSON
    return events, done.stdout.decode()


def test_ffmpeg_noise_becomes_counted_events(tmp_path: Path) -> None:
    clip = corrupt_clip(tmp_path / "clip.avi")
    events, stdout = _run_noisy(clip, "raw")
    assert stdout == ""
    native = [e for e in events if e["event"] == "native_log_lines"]
    mjpeg = [e for e in native if e.get("component") == "mjpeg"]
    assert sum(e["count"] for e in mjpeg) == len(BAD_FRAMES)  # one FFmpeg line per bad frame
    assert mjpeg[-1]["total"] == len(BAD_FRAMES) and len(mjpeg) < len(BAD_FRAMES)  # rate-limited
    assert all(e["source"] == "ffmpeg" and "sample" not in e for e in mjpeg)
    assert [e["count"] for e in native if e.get("component") == "h264"] == [1]
    assert [e.get("sample") for e in native if e["source"] == "native"] == [
        "libfoo: something native"]
    text = "\n".join(str(e) for e in events)
    assert "@ 0x" not in text and "JPEG data" not in text and "bytestream" not in text

    # as the daemon runs a camera: the decoders are quiet and the reader counts the bad frames
    events, stdout = _run_noisy(clip, "reader")
    assert stdout == ""
    assert not [e for e in events if e["event"] == "native_log_lines"
                and e["source"] == "ffmpeg"]
    corrupt = [e for e in events if e["event"] == "capture_corrupt_frames"]
    assert sum(e["count"] for e in corrupt) == len(BAD_FRAMES)
    assert all(e["camera"].startswith("opencv:") for e in corrupt)


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_file_or_folder_logs_its_end_once(tmp_path: Path, kind: str) -> None:
    """A folder of 2 images at 40 fps ends 20 times a second; its end is said once (info),
    it plays on, and it is no outage. A camera's end stays an outage each time."""
    from structlog.testing import capture_logs

    if kind == "folder":
        for i in range(2):
            cv2.imwrite(str(tmp_path / f"{i}.png"), img(40 * i))
        source = ImageFolderSource(tmp_path, fps=40)
    else:
        path = tmp_path / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50, (64, 48))
        for i in range(3):
            writer.write(img(20 * i))
        writer.release()
        source = OpenCVSource(str(path))
    with capture_logs() as logs, reading(source, backoff_initial_s=0.01) as reader:
        wait_for(lambda: reader.stats().reconnects >= 5, 10.0, "5 loops")
    events = [e["event"] for e in logs]
    assert events.count("capture_stream_ended") == 1, events
    assert "capture_outage" not in events and reader.stats().outages == 0
    ended = next(e for e in logs if e["event"] == "capture_stream_ended")
    assert ended["log_level"] == "info" and ended["looping"] is True
    # a camera (not finite) that ends is an outage every time, as before
    camera = ScriptedSource([[1, 2]])
    with capture_logs() as logs, reading(camera, backoff_initial_s=0.01,
                                         backoff_max_s=0.01) as reader:
        wait_for(lambda: reader.stats().outages >= 2, 5.0, "2 outages")
    assert [e["event"] for e in logs].count("capture_outage") >= 2
