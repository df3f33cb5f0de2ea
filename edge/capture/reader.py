"""The latest-frame reader: one thread per camera that keeps only the newest frame.

Backends buffer and hand out stale frames, so the thread reads continuously and the inference
loop always gets the newest frame with its age. When a source ends or fails the thread logs
the outage, closes it and re-opens with exponential backoff; a finite source (a file or
folder: `finite` true) that ends after frames is played again at once, its end logged once
(`capture_stream_ended`), not an outage. A corrupt frame is dropped and the
stream goes on: it counts in `corrupt` (and a rate-limited `capture_corrupt_frames` event),
while `max_corrupt_in_a_row` unreadable frames in a row are an outage instead (the stream is
re-opened, and that run counts as the outage, not as corrupt frames). An unexpected error from
the backend (not a CaptureError: a driver bug, a cv2.error) is also an outage, but only within
a restart budget (5 a minute by default): past it the reader gives up (`gave_up`) rather than
spin, and the daemon stops so systemd restarts it.
Nothing here ever writes a frame anywhere.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

import structlog

from edge.capture.decoder_log import CountedEvents
from edge.capture.source import CaptureError, CorruptFrameError, Frame, FrameSource
from foundation.clock import Clock
from foundation.restart_budget import RestartBudget
from foundation.settings import CaptureSettings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReaderStats:
    frames: int
    corrupt: int
    reconnects: int
    outages: int
    connected: bool
    frame_age_s: float | None  # None before the first frame


class LatestFrameReader:
    """Reads `source` on its own thread; `wait_frame` hands out the newest frame only."""

    def __init__(self, source: FrameSource, clock: Clock, *, backoff_initial_s: float = 0.1,
                 backoff_max_s: float = 10.0, stale_after_s: float = 5.0,
                 restart_budget: RestartBudget | None = None,
                 max_corrupt_in_a_row: int = 25) -> None:
        self.source = source
        self._max_corrupt_in_a_row = max(1, int(max_corrupt_in_a_row))
        self._corrupt_events = CountedEvents("capture_corrupt_frames", logger=log)
        self._clock = clock
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._stale_after = stale_after_s
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._latest: Frame | None = None
        self._seq = 0
        self._frames = 0
        self._corrupt = 0
        self._reconnects = 0
        self._outages = 0
        self._connected = False
        self._thread: threading.Thread | None = None
        self._budget = restart_budget or RestartBudget(clock)
        self.gave_up = False  # the restart budget for unexpected errors is spent
        self._ended_logged = False  # a finite source's end is logged once, not every loop

    @classmethod
    def for_capture(cls, source: FrameSource, clock: Clock,
                    capture: CaptureSettings) -> LatestFrameReader:
        """A reader with the capture settings' reconnect backoff, staleness and corrupt-run
        limit."""
        return cls(source, clock, backoff_initial_s=capture.reconnect_initial_s,
                   backoff_max_s=capture.reconnect_max_s, stale_after_s=capture.stale_after_s,
                   max_corrupt_in_a_row=capture.max_corrupt_in_a_row)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> LatestFrameReader:
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.source.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- consumer side -----------------------------------------------------------------------
    def wait_frame(self, after_seq: int, timeout: float) -> Frame | None:
        """The newest frame with seq > after_seq, waiting up to `timeout` s; None if none."""
        with self._cond:
            if self._latest is None or self._latest.seq <= after_seq:
                self._cond.wait_for(
                    lambda: self._stop.is_set()
                    or (self._latest is not None and self._latest.seq > after_seq), timeout)
            frame = self._latest
        if frame is None or frame.seq <= after_seq:
            return None
        return frame

    def stats(self) -> ReaderStats:
        with self._cond:
            age = (None if self._latest is None
                   else self._clock.monotonic() - self._latest.captured_mono)
            return ReaderStats(self._frames, self._corrupt, self._reconnects, self._outages,
                               self._connected, age)

    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def healthy(self) -> bool:
        s = self.stats()
        return s.connected and s.frame_age_s is not None and s.frame_age_s <= self._stale_after

    # -- reader thread -----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._supervise()
        finally:
            self._set_connected(False)
            self._corrupt_events.flush()  # what the rate limit held back

    def _supervise(self) -> None:
        backoff = self._backoff_initial
        first = True
        outage_since: float | None = None
        while not self._stop.is_set():
            try:
                self.source.open()
            except Exception as exc:
                if not isinstance(exc, CaptureError) and not self._crashed("open", exc):
                    return
                if outage_since is None:
                    outage_since = self._clock.monotonic()
                    self._outages += 1
                    log.warning("capture_outage", camera=self.source.name, error=str(exc))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            if not first:
                self._reconnects += 1
            first = False
            self._set_connected(True)
            if outage_since is not None:
                log.info("capture_restored", camera=self.source.name,
                         outage_s=round(self._clock.monotonic() - outage_since, 3))
                outage_since = None
            try:
                got_frame = self._read_until_end()
            except Exception as exc:  # not a CaptureError: the backend itself failed
                got_frame = False
                if not self._crashed("read", exc):
                    self._set_connected(False)
                    with contextlib.suppress(Exception):
                        self.source.close()
                    return
            self._set_connected(False)
            try:
                self.source.close()
            except Exception:  # closing a dead device may fail; it is being replaced anyway
                log.debug("capture_close_failed", camera=self.source.name)
            if self._stop.is_set():
                break
            if got_frame and getattr(self.source, "finite", False):
                # the end of a file or folder: played again (a reconnect), said once
                if not self._ended_logged:
                    self._ended_logged = True
                    log.info("capture_stream_ended", camera=self.source.name, looping=True)
                backoff = self._backoff_initial
                continue
            outage_since = self._clock.monotonic()
            self._outages += 1
            log.warning("capture_outage", camera=self.source.name, error="stream ended")
            if got_frame:
                backoff = self._backoff_initial
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self._backoff_max)

    def _crashed(self, where: str, exc: Exception) -> bool:
        """An unexpected error: True to restart (budget left), False to give up."""
        if self._budget.spend():
            log.error("capture_crashed", camera=self.source.name, where=where,
                      error=type(exc).__name__, detail=str(exc)[:200],
                      recent=self._budget.recent)
            return True
        self.gave_up = True
        log.error("capture_gave_up", camera=self.source.name, where=where,
                  error=type(exc).__name__, detail=str(exc)[:200],
                  restarts=self._budget.max_restarts, window_s=self._budget.window_s)
        return False

    def _read_until_end(self) -> bool:
        got_frame = False
        in_a_row = 0  # unreadable frames since the last good one
        while not self._stop.is_set():
            try:
                cap = self.source.read()
            except CorruptFrameError as exc:
                in_a_row += 1
                log.debug("capture_corrupt_frame", camera=self.source.name, reason=str(exc))
                if in_a_row >= self._max_corrupt_in_a_row:
                    log.warning("capture_read_failed", camera=self.source.name,
                                error=f"{in_a_row} unreadable frames in a row")
                    return got_frame
                continue
            except CaptureError as exc:
                self._count_corrupt(in_a_row)
                log.warning("capture_read_failed", camera=self.source.name, error=str(exc))
                return got_frame
            self._count_corrupt(in_a_row)
            in_a_row = 0
            if cap is None:
                return got_frame
            got_frame = True
            with self._cond:
                self._seq += 1
                self._frames += 1
                self._latest = Frame(self._seq, self._clock.monotonic(), cap.image, cap.thermal)
                self._cond.notify_all()
        return got_frame

    def _count_corrupt(self, n: int) -> None:
        """Corrupt frames the stream went on past (or ended normally after)."""
        if n:
            with self._cond:
                self._corrupt += n
            self._corrupt_events.add(n, camera=self.source.name)

    def _set_connected(self, value: bool) -> None:
        with self._cond:
            self._connected = value
