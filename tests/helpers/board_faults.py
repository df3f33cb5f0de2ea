"""Helpers of the lane-board fault tests (not a test module): real capture readers and a real
gate link in the states a daemon in trouble reports (a camera that stopped delivering while
connected, one that cannot be opened, a gate controller that never answered)."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from edge.capture.reader import LatestFrameReader
from edge.capture.source import Capture, CaptureError
from edge.decisions.gatelink import GateLink
from foundation.clock import FakeClock
from gate_controller.client import GateUnavailableError
from gate_controller.fake_client import FakeGateClient
from wire.gate import Ack


class TestCamera:
    """A FrameSource: `dead` refuses to open; `hang` stops delivering while connected."""

    __test__ = False

    def __init__(self, name: str, dead: bool = False) -> None:
        self.name, self.dead, self.hang = name, dead, False
        self.released = threading.Event()

    def open(self) -> None:
        if self.dead:
            raise CaptureError(f"{self.name}: no such device")

    def read(self) -> Capture | None:
        while self.hang and not self.released.is_set():
            time.sleep(0.02)
        time.sleep(0.01)
        return Capture(np.zeros((48, 64, 3), np.uint8))

    def close(self) -> None:
        pass


class DeadGate(FakeGateClient):
    """A gate client whose controller does not answer heartbeats."""

    def heartbeat(self) -> Ack:
        raise GateUnavailableError("gate controller did not acknowledge within 1000 ms")


def wait(cond, what: str, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


class Box:
    """Real readers for `cameras` (name -> "ok" | "stale" | "down") and a gate link that is
    up or has never answered; `stop()` ends the readers."""

    def __init__(self, clock: FakeClock, cameras: dict[str, str], gate_up: bool) -> None:
        self.sources = {n: TestCamera(n, dead=(s == "down")) for n, s in cameras.items()}
        self.readers = [(n, LatestFrameReader(src, clock, backoff_initial_s=0.05,
                                              backoff_max_s=0.05, stale_after_s=5.0).start())
                        for n, src in self.sources.items()]
        for (name, reader), want in zip(self.readers, cameras.values(), strict=True):
            if want != "down":
                wait(lambda r=reader: r.stats().frames > 0, f"a {name} frame")
        stale = [self.sources[n] for n, s in cameras.items() if s == "stale"]
        for src in stale:
            src.hang = True
        if stale:
            time.sleep(0.1)  # the reader thread is now inside the hanging read
            clock.advance(30.0)  # no frame for 30 s while connected: stale
            for (name, reader), want in zip(self.readers, cameras.values(), strict=True):
                if want == "ok":  # a camera that delivers has a fresh frame again
                    wait(lambda r=reader: r.healthy(), f"a fresh {name} frame")
        self.link = GateLink(DeadGate, 0.5, queue.Queue(), clock)
        self.link.beat(FakeGateClient() if gate_up else DeadGate())

    def stop(self) -> None:
        for src in self.sources.values():
            src.released.set()
        for _, r in self.readers:
            r.stop(2.0)
