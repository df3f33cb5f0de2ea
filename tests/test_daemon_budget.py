"""The restart budget (DESIGN: a supervised part gets e.g. 5 restarts a minute, not endless
ones): the capture reader restarts a crashing backend within it and gives up past it; the
inference loop survives a stray error on one frame but stops with a clear error when the
errors keep coming."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.capture.reader import LatestFrameReader
from edge.capture.source import Capture
from edge.daemon import Daemon, DaemonError
from foundation.clock import FakeClock, SystemClock
from foundation.restart_budget import RestartBudget
from foundation.settings import Settings


def test_budget_allows_n_restarts_per_window() -> None:
    clock = FakeClock()
    budget = RestartBudget(clock, max_restarts=2, window_s=60)
    assert budget.spend() and budget.spend()
    assert not budget.spend()  # the third failure within a minute spends it
    clock.advance(61)
    assert budget.spend() and budget.recent == 1  # old failures age out


class CrashingSource:
    """A backend with a bug: every read raises something that is not a CaptureError."""

    name = "buggy"

    def __init__(self, good_frames: int = 1) -> None:
        self.opens = 0
        self.good = good_frames
        self._left = 0

    def open(self) -> None:
        self.opens += 1
        self._left = self.good

    def read(self) -> Capture | None:
        time.sleep(0.002)
        if self._left > 0:
            self._left -= 1
            return Capture(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("driver bug")

    def close(self) -> None:
        pass


def test_reader_restarts_a_crashing_backend_then_gives_up() -> None:
    src = CrashingSource()
    reader = LatestFrameReader(src, SystemClock(), backoff_initial_s=0.01, backoff_max_s=0.02,
                               restart_budget=RestartBudget(SystemClock(), 2, 60))
    reader.start()
    try:
        end = time.monotonic() + 5
        while reader.thread_alive() and time.monotonic() < end:
            time.sleep(0.01)
        assert not reader.thread_alive(), "the reader never gave up"
        assert reader.gave_up
        assert src.opens == 3  # the first run and two restarts, then no more
        assert reader.stats().frames == 3 and not reader.stats().connected
    finally:
        reader.stop()


class Frames:
    """A FrameSource of endless blank frames."""

    name = "frames"

    def open(self) -> None:
        pass

    def read(self) -> Capture | None:
        time.sleep(0.005)
        return Capture(np.zeros((48, 64, 3), np.uint8))

    def close(self) -> None:
        pass


class FlakyPipeline:
    def __init__(self, fail: set[int]) -> None:
        self.fail = fail
        self.calls = 0
        self.lanes: dict = {}
        self.screener = None

    def process(self, frame) -> None:
        self.calls += 1
        if self.calls in self.fail:
            raise ValueError("onnxruntime hiccup")

    def tick(self) -> None:
        pass


def loop_daemon(pipeline: FlakyPipeline) -> Daemon:
    clock = SystemClock()
    d = Daemon(Settings(), clock)
    d.pipeline = pipeline  # type: ignore[assignment]
    d.reader = LatestFrameReader(Frames(), clock).start()
    d.loop_budget = RestartBudget(clock, 2, 60)
    return d


def test_loop_survives_a_stray_error() -> None:
    pipeline = FlakyPipeline({3})
    d = loop_daemon(pipeline)
    try:
        d.loop(until=time.monotonic() + 0.5)
    finally:
        d.reader.stop()
    assert pipeline.calls > 5 and d.metrics.loop_errors.value() == 1


def test_loop_stops_when_errors_keep_coming() -> None:
    pipeline = FlakyPipeline(set(range(1, 10_000)))
    d = loop_daemon(pipeline)
    try:
        with pytest.raises(DaemonError, match=r"failed 3 times within 60 s.*systemd restarts"):
            d.loop(until=time.monotonic() + 5)
    finally:
        d.reader.stop()
    assert pipeline.calls == 3


def test_loop_stops_when_the_camera_reader_gave_up() -> None:
    d = loop_daemon(FlakyPipeline(set()))
    d.reader.stop()
    d.reader = LatestFrameReader(CrashingSource(good_frames=0), SystemClock(),
                                 backoff_initial_s=0.01, backoff_max_s=0.02,
                                 restart_budget=RestartBudget(SystemClock(), 1, 60)).start()
    try:
        with pytest.raises(DaemonError, match="visible camera kept failing"):
            d.loop(until=time.monotonic() + 5)
    finally:
        d.reader.stop()
