"""Decoder noise (FFmpeg, OpenCV and other native libraries) as counted events, never raw lines.

FFmpeg prints a line to stderr for every damaged packet of a stream, and OpenCV's own logger
adds warnings; in a JSON log those raw lines break the format, can name stream URLs, and
arrive by the hundred. Two layers keep them out:

- `quiet_decoders()` (called before the first capture opens, and by the daemon at start) sets
  `OPENCV_FFMPEG_LOGLEVEL=-8` (AV_LOG_QUIET: OpenCV's FFmpeg log callback otherwise prints to
  stdout), `OPENCV_LOG_LEVEL=ERROR` and OpenCV's log level, unless an operator set them;
- `NativeStderrTap` moves file descriptor 2 onto a pipe read by a thread: Python's own stderr
  (and the structlog output) keep the real stream, and whatever native code still writes to
  fd 2 becomes `native_log_lines` events, counted per source and component and rate-limited
  (the first line of a kind at once, then one event per kind per interval). FFmpeg and OpenCV
  lines are counted only; an unrecognised line keeps a short printable sample, since it may be
  a native library's last word before a crash.

Corrupt frames themselves are counted by the reader (edge.capture.reader), which also reports
them as a rate-limited `capture_corrupt_frames` event (`CountedEvents`).
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import structlog

log = structlog.get_logger(__name__)

QUIET_ENV = {"OPENCV_FFMPEG_LOGLEVEL": "-8", "OPENCV_LOG_LEVEL": "ERROR"}
_FFMPEG = re.compile(r"^\[(?P<component>[A-Za-z0-9_]{1,32}) @ (?:0x)?[0-9a-fA-F]+\]")
_OPENCV_FFMPEG = re.compile(r"^\[OPENCV:FFMPEG:(?P<level>\d{1,2})\]")
_OPENCV = re.compile(r"^\[ ?(?P<level>WARN|ERROR|INFO|DEBUG|FATAL|VERBOSE)[:\]]")
_PRINTABLE = re.compile(r"[^\x20-\x7e]")
MAX_KINDS = 64
MAX_LINE = 4096
SAMPLE_CHARS = 120


def quiet_decoders() -> None:
    """FFmpeg's and OpenCV's own logging off (before the first VideoCapture opens), unless an
    operator set the variables (e.g. to debug a camera)."""
    chosen = "OPENCV_LOG_LEVEL" in os.environ
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if chosen:
        return
    try:  # cv2 may be imported already: it read OPENCV_LOG_LEVEL then
        from cv2.utils import logging as cv_logging

        if cv_logging.getLogLevel() > cv_logging.LOG_LEVEL_ERROR:
            cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)
    except Exception:  # an OpenCV without it: the environment variable still holds
        log.debug("opencv_log_level_not_set")


class CountedEvents:
    """Counts of kinds of events, logged at most once per `interval_s` per kind (the first one
    at once); `flush()` logs what is left."""

    def __init__(self, event: str, *, interval_s: float = 10.0, level: str = "warning",
                 clock: Callable[[], float] = time.monotonic,
                 logger: Any | None = None) -> None:
        self._event = event
        self._interval = float(interval_s)
        self._level = level
        self._clock = clock
        self._log = logger or log
        self._lock = threading.Lock()
        self._pending: dict[tuple[tuple[str, str], ...], int] = {}
        self._totals: dict[tuple[tuple[str, str], ...], int] = {}
        self._last: dict[tuple[tuple[str, str], ...], float] = {}
        self._extra: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def add(self, n: int = 1, extra: dict[str, str] | None = None, **kind: str) -> None:
        key = tuple(sorted(kind.items()))
        now = self._clock()
        with self._lock:
            if key not in self._totals and len(self._totals) >= MAX_KINDS:
                key = (("kind", "other"),)
            self._pending[key] = self._pending.get(key, 0) + n
            self._totals[key] = self._totals.get(key, 0) + n
            if extra and key not in self._extra:
                self._extra[key] = extra
            due = [k for k, c in self._pending.items()
                   if c and now - self._last.get(k, -1e18) >= self._interval]
            out = [self._take(k, now) for k in due]
        for fields in out:
            self._emit(fields)

    def flush(self) -> None:
        now = self._clock()
        with self._lock:
            out = [self._take(k, now) for k, c in self._pending.items() if c]
        for fields in out:
            self._emit(fields)

    def total(self, **kind: str) -> int:
        with self._lock:
            return self._totals.get(tuple(sorted(kind.items())), 0)

    def _take(self, key: tuple[tuple[str, str], ...], now: float) -> dict[str, Any]:
        fields: dict[str, Any] = dict(key)
        fields.update(self._extra.pop(key, {}))
        fields["count"] = self._pending[key]
        fields["total"] = self._totals[key]
        self._pending[key] = 0
        self._last[key] = now
        return fields

    def _emit(self, fields: dict[str, Any]) -> None:
        getattr(self._log, self._level)(self._event, **fields)


def classify(line: str) -> tuple[dict[str, str], dict[str, str]]:
    """(kind, extra) of one native stderr line: FFmpeg and OpenCV lines by component and
    level only; anything else as `native` with a short printable sample."""
    m = _FFMPEG.match(line)
    if m:
        return {"source": "ffmpeg", "component": m.group("component").lower()}, {}
    m = _OPENCV_FFMPEG.match(line)
    if m:
        return {"source": "ffmpeg", "component": f"level{int(m.group('level'))}"}, {}
    m = _OPENCV.match(line.lstrip())
    if m:
        return {"source": "opencv", "component": m.group("level").lower()}, {}
    sample = _PRINTABLE.sub("?", line.strip())[:SAMPLE_CHARS]
    return {"source": "native", "component": "stderr"}, {"sample": sample}


class NativeStderrTap:
    """Takes file descriptor 2 over (see the module docstring); `install()` returns the real
    stderr as a text stream, which also becomes `sys.stderr` (give it to configure_logging)."""

    def __init__(self, *, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.events = CountedEvents("native_log_lines", interval_s=interval_s, clock=clock)
        self._saved_fd: int | None = None
        self._read_fd: int | None = None
        self._thread: threading.Thread | None = None
        self._stream: TextIO | None = None
        self._old_stderr: TextIO | None = None

    @property
    def installed(self) -> bool:
        return self._saved_fd is not None

    def install(self) -> TextIO:
        if self._stream is not None:
            return self._stream
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        saved = os.dup(2)
        real = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8",
                         errors="backslashreplace")
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError):  # a roomy pipe: bursts never wait for the thread
            fcntl.fcntl(write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        # never block a decoder on a full pipe: a line that does not fit is dropped
        flags = fcntl.fcntl(write_fd, fcntl.F_GETFL)
        fcntl.fcntl(write_fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._saved_fd, self._read_fd, self._stream = saved, read_fd, real
        self._old_stderr, sys.stderr = sys.stderr, real
        with contextlib.suppress(Exception):  # crash tracebacks reach the real stderr
            faulthandler.enable(file=real)
        self._thread = threading.Thread(target=self._drain, name="native-stderr", daemon=True)
        self._thread.start()
        return real

    def close(self, timeout_s: float = 2.0) -> None:
        """Give fd 2 back, read what is left, and log the remaining counts."""
        if self._saved_fd is None:
            return
        with contextlib.suppress(Exception):
            faulthandler.disable()
        os.dup2(self._saved_fd, 2)  # the pipe's last writer is gone: the thread sees EOF
        os.close(self._saved_fd)
        self._saved_fd = None
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.events.flush()
        if self._old_stderr is not None:
            sys.stderr = self._old_stderr

    def _drain(self) -> None:
        assert self._read_fd is not None
        pending = b""
        try:
            while True:
                try:
                    chunk = os.read(self._read_fd, 65536)
                except InterruptedError:
                    continue
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > MAX_LINE:
                    lines.append(pending[:MAX_LINE])
                    pending = b""
                for raw in lines:
                    self._count(raw)
            if pending:
                self._count(pending)
        finally:
            os.close(self._read_fd)

    def _count(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line.strip():
            return
        kind, extra = classify(line)
        self.events.add(1, extra, **kind)


@contextlib.contextmanager
def native_log_tap(interval_s: float = 10.0) -> Iterator[NativeStderrTap]:
    """Quiet decoders and a `NativeStderrTap` for the block (the daemon's whole run)."""
    quiet_decoders()
    tap = NativeStderrTap(interval_s=interval_s)
    tap.install()
    try:
        yield tap
    finally:
        tap.close()
