"""Token readers: the QR code in a visible frame (OpenCV, from segno's QR code of a real
token), the watcher's lane mapping, repeat suppression and its thread on a frame reader, the
serial scanner on a pseudo-terminal and the simulated scanner beside it."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import segno

from edge.capture.codes import CodeWatcher, QrCodes
from edge.capture.scanner import ScannerThread, SerialScanner, SimulatedScanner
from edge.capture.source import Frame
from edge.consent.token_format import PassengerKey
from foundation.clock import FakeClock

ZONES = {"A": np.array([(0, 0), (320, 0), (320, 480), (0, 480)], np.float32),
         "B": np.array([(320, 0), (640, 0), (640, 480), (320, 480)], np.float32)}


def token() -> str:
    return PassengerKey.new(os.urandom(16).hex()).token()


def frame_with(text: str, x: int, y: int, scale: int = 4) -> np.ndarray:
    rows = np.array(list(segno.make(text, error="m").matrix_iter(scale=scale, border=4)),
                    np.uint8)
    image = np.full((480, 640, 3), 140, np.uint8)
    image[y:y + rows.shape[0], x:x + rows.shape[1]] = np.where(rows == 1, 0, 255)[..., None]
    return image


def test_qr_code_of_a_token_is_read_with_its_position():
    text = token()
    codes = QrCodes().read(frame_with(text, 400, 200))
    assert [c[0] for c in codes] == [text]
    x, y = codes[0][1]
    assert 400 < x < 580 and 200 < y < 380
    assert QrCodes().read(np.full((480, 640, 3), 140, np.uint8)) == []


def test_watcher_maps_codes_to_lanes_and_hands_each_over_once():
    clock, got = FakeClock(), []
    watcher = CodeWatcher(frames=None, codes=QrCodes(),  # type: ignore[arg-type]
                          submit=lambda t, lane, s: got.append((t, lane, s)) or True,
                          zones=ZONES, clock=clock, repeat_s=3.0)
    text = token()
    image = frame_with(text, 400, 200)
    assert watcher.scan(image) == 1 and got == [(text, "B", "camera")]
    for _ in range(5):  # in view for a while: not handed over again
        clock.advance(1.0)
        assert watcher.scan(image) == 0
    clock.advance(3.5)  # out of view for longer than repeat_s, then back
    watcher.scan(np.full((480, 640, 3), 140, np.uint8))
    assert watcher.scan(image) == 1 and len(got) == 2
    assert watcher.lane_of((100, 100)) == "A" and watcher.lane_of((-5, -5)) is None


def test_watcher_ignores_codes_that_are_not_tokens():
    from edge.consent.token_format import looks_like_token

    got: list = []
    watcher = CodeWatcher(None, QrCodes(),  # type: ignore[arg-type]
                          lambda t, lane, s: got.append(t) or True, ZONES, FakeClock(),
                          accept=looks_like_token)
    assert watcher.scan(frame_with("M1DESMARAIS/LUC       EABC123 YULFRAAC 0834", 40, 40)) == 0
    damaged = token()[:-2] + "AA"
    assert watcher.scan(frame_with(damaged, 40, 40)) == 1 and got == [damaged]  # refused later
    assert looks_like_token(" cg1.abc") and not looks_like_token("CGX.")


def test_watcher_thread_reads_the_newest_frame():
    text, got = token(), []

    class Frames:
        def wait_frame(self, after_seq: int, timeout: float) -> Frame | None:
            if after_seq >= 1:
                time.sleep(timeout)
                return None
            return Frame(1, 0.0, frame_with(text, 40, 40))

    watcher = CodeWatcher(Frames(), QrCodes(), lambda t, lane, s: got.append(lane) or True,
                          {"A": ZONES["A"]}, FakeClock(), interval_s=0.02).start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    watcher.stop()
    assert got == ["A"] and watcher.failures == 0


def test_simulated_scanner_feeds_the_lane():
    scanner, got = SimulatedScanner(), []
    thread = ScannerThread(scanner, lambda t, lane, s: got.append((t, lane, s)) or True,
                           "A").start()
    scanner.scan("  CG1.ABC  ")
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    thread.stop()
    assert got == [("CG1.ABC", "A", "scanner")]


def test_serial_scanner_reads_lines_from_a_pty_and_drops_junk():
    pytest.importorskip("serial")
    master, slave = os.openpty()
    try:
        scanner = SerialScanner(os.ttyname(slave), 9600)
        scanner.open()
        text = token()
        os.write(master, b"\xff\xfe garbage\r\n" + text[:50].encode() + text[50:].encode()
                 + b"\r\n" + b"x" * 600 + b"\n")
        assert scanner.read_line(2.0) == text  # the undecodable line was dropped
        assert scanner.read_line(0.3) is None  # an over-long line is not a code
        scanner.close()
    finally:
        os.close(master)
        os.close(slave)


def test_serial_scanner_that_cannot_open_is_retried_with_backoff(tmp_path):
    scanner = SerialScanner(str(tmp_path / "no-such-tty"))
    thread = ScannerThread(scanner, lambda *a: True, "A", backoff_initial_s=0.05,
                           backoff_max_s=0.1).start()
    deadline = time.monotonic() + 5
    while thread.failures < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    thread.stop()
    assert thread.failures >= 2
