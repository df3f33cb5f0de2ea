"""Camera: delivers frames at the configured rate, and the reader recovers from an unplug.

Real mode: [camera] in hw.toml (device, URL or file); the unplug case asks the tester to pull
and replug the cable when `unplug = true`. Simulator mode: a short generated video file played
at its own rate; "unplug" = the file vanishes while the stream ends, then comes back, which
drives the same outage/reconnect path of the latest-frame reader.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture.opencv import ImageFolderSource, OpenCVSource
from edge.capture.reader import LatestFrameReader
from foundation.clock import SystemClock

SIM_FPS = 10.0


@dataclass
class Camera:
    spec: str
    fps: float
    real: bool
    unplug: bool


def _write_video(path: Path, seconds: float, fps: float = SIM_FPS) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    assert writer.isOpened(), "OpenCV cannot write MJPG video here"
    for i in range(int(seconds * fps)):
        img = np.full((120, 160, 3), 40, np.uint8)
        cv2.circle(img, (10 + (i * 7) % 140, 60), 12, (0, 200, 255), -1)
        writer.write(img)
    writer.release()


@pytest.fixture
def camera(hw_config, hw, tmp_path: Path) -> Camera:
    c = hw_config.camera
    if c is not None:
        hw.part("camera", c.source)
        return Camera(c.source, c.fps, True, c.unplug)
    video = tmp_path / "camera.avi"
    _write_video(video, seconds=3.0)
    hw.part("camera", None)
    return Camera(str(video), SIM_FPS, False, True)


def _source(spec: str):
    return ImageFolderSource(spec) if Path(spec).is_dir() else OpenCVSource(spec)


def _wait(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_frames_at_rate(camera: Camera, hw) -> None:
    reader = LatestFrameReader(_source(camera.spec), SystemClock(), backoff_max_s=1.0).start()
    try:
        assert _wait(lambda: reader.stats().frames > 0, 10), "no first frame within 10 s"
        first = reader.stats().frames
        start = time.monotonic()
        time.sleep(2.0)
        took = time.monotonic() - start
        fps = (reader.stats().frames - first) / took
        frame = reader.wait_frame(0, 1.0)
    finally:
        reader.stop()
    hw.timing("fps", fps)
    assert frame is not None and frame.image.ndim == 3
    assert fps >= 0.8 * camera.fps, f"{fps:.1f} fps, configured {camera.fps:g}"
    assert fps <= 1.5 * camera.fps, f"{fps:.1f} fps is far above {camera.fps:g}: not paced"


def test_recovers_from_unplug(camera: Camera, hw, capsys) -> None:
    if not camera.unplug:
        pytest.skip("real camera: set [camera] unplug = true to have a tester unplug it")
    reader = LatestFrameReader(_source(camera.spec), SystemClock(), backoff_initial_s=0.1,
                               backoff_max_s=0.5).start()
    try:
        assert _wait(lambda: reader.stats().frames > 0, 10), "no first frame within 10 s"
        if camera.real:
            with capsys.disabled():
                print("\n>>> UNPLUG the camera now (60 s)")
        else:
            os.rename(camera.spec, camera.spec + ".away")  # gone when the stream ends
        pulled = time.monotonic()
        assert _wait(lambda: not reader.stats().connected, 60 if camera.real else 10), \
            "the reader never noticed the camera was gone"
        noticed = time.monotonic() - pulled
        outages = reader.stats().outages
        frames_before = reader.stats().frames
        if camera.real:
            with capsys.disabled():
                print(">>> PLUG the camera back in (60 s)")
        else:
            time.sleep(1.0)  # stays away through a few reconnect attempts
            os.rename(camera.spec + ".away", camera.spec)
        back = time.monotonic()
        assert _wait(lambda: reader.stats().frames > frames_before + 3, 60 if camera.real
                     else 10), "frames did not resume after the camera came back"
        recovered = time.monotonic() - back
        stats = reader.stats()
    finally:
        reader.stop()
    hw.timing("outage_noticed_s", noticed)
    hw.timing("recovered_s", recovered)
    assert stats.connected and stats.reconnects >= 1 and stats.outages >= outages
    assert recovered < (30 if camera.real else 3.0)
