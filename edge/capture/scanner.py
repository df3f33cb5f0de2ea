"""A code scanner at a lane (the passenger-held key's QR code, read by a dedicated scanner).

`CodeScanner` is the boundary: one scanned code per line. `SerialScanner` reads a real one (USB
CDC or RS-232, pyserial; lines end in CR or LF, at most 256 characters, ASCII); the
`SimulatedScanner` beside it is fed by `scan(text)` (demos, drills, tests). `ScannerThread`
reads lines on its own thread, hands each to `submit(text, lane, "scanner")`, and re-opens a
scanner that fails, with backoff. A scanner's text is never logged.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from edge.capture.source import CaptureError
from foundation.worker import Worker

log = structlog.get_logger(__name__)

MAX_LINE = 256
Submit = Callable[[str, str | None, str], bool]


class CodeScanner(Protocol):
    name: str

    def open(self) -> None:
        """Open (or re-open); raise CaptureError when the scanner cannot be opened."""
        ...

    def read_line(self, timeout_s: float) -> str | None:
        """The next scanned code, or None when nothing came within `timeout_s`."""
        ...

    def close(self) -> None: ...


class SimulatedScanner:
    """A scanner fed in memory: `scan(text)` is a traveller holding a code to it."""

    name = "simulated"

    def __init__(self) -> None:
        self._lines: queue.Queue[str] = queue.Queue(64)

    def scan(self, text: str) -> None:
        self._lines.put_nowait(text)

    def open(self) -> None:
        pass

    def read_line(self, timeout_s: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        pass


class SerialScanner:
    """A serial (or USB CDC) code scanner that ends each code with CR and/or LF."""

    def __init__(self, port: str, baud: int = 9600) -> None:
        self.name = f"serial:{port}"
        self._port = port
        self._baud = int(baud)
        self._serial: Any = None
        self._buf = bytearray()
        self._overlong = False  # inside a line that grew past MAX_LINE: dropped to its end

    def open(self) -> None:
        import serial

        self.close()
        try:
            self._serial = serial.Serial(port=self._port, baudrate=self._baud, timeout=0.1,
                                         exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise CaptureError(f"the code scanner on {self._port} could not be opened "
                               f"({exc}): check the cable and matching.scanner_port") from None

    def read_line(self, timeout_s: float) -> str | None:
        import serial

        if self._serial is None:
            raise CaptureError("the code scanner is not open")
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                line = self._take_line()
                if line is not None:
                    return line
                if time.monotonic() >= deadline:
                    return None
                self._buf += self._serial.read(64) or b""
        except (serial.SerialException, OSError) as exc:
            raise CaptureError(f"the code scanner on {self._port} failed ({exc})") from None

    def _take_line(self) -> str | None:
        while True:
            ends = [i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0]
            if not ends:
                if len(self._buf) > MAX_LINE:  # no line end in sight: not a code, dropped
                    self._buf.clear()
                    self._overlong = True
                return None
            end = min(ends)
            raw, self._buf[:end + 1] = bytes(self._buf[:end]), b""
            if self._overlong:
                self._overlong = False
                continue
            if raw and len(raw) <= MAX_LINE:
                try:
                    return raw.decode("ascii")
                except UnicodeDecodeError:
                    continue

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
        self._serial = None
        self._buf.clear()
        self._overlong = False


class ScannerThread(Worker):
    """Reads one scanner's lines and hands each to `submit`; re-opens it with backoff."""

    thread_name = "scanner"

    def __init__(self, scanner: CodeScanner, submit: Submit, lane: str | None, *,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 10.0) -> None:
        super().__init__()
        self.scanner = scanner
        self._submit = submit
        self.lane = lane
        self._backoff = (backoff_initial_s, backoff_max_s)
        self.codes = 0
        self.failures = 0

    def _after_stop(self) -> None:
        self.scanner.close()

    def _run(self) -> None:
        wait = self._backoff[0]
        while not self._stop.is_set():
            try:
                self.scanner.open()
                wait = self._backoff[0]
                while not self._stop.is_set():
                    line = self.scanner.read_line(0.2)
                    if line is not None and line.strip():
                        self.codes += 1
                        self._submit(line.strip(), self.lane, "scanner")
            except CaptureError as exc:
                self.failures += 1
                log.warning("scanner_failed", scanner=self.scanner.name, error=str(exc)[:200],
                            retry_s=wait)
                self.scanner.close()
                self._stop.wait(wait)
                wait = min(wait * 2, self._backoff[1])
