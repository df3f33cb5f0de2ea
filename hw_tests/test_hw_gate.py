"""Gate I/O board: the relay opens and closes, passage and fire-alarm inputs are read; timed.

Drives the real `serial_relay` driver of the gate controller. Real mode: [gate] port in hw.toml
(inputs need a tester at the gate: `interactive = true`). Simulator mode: the relay board
simulator on a pseudo-terminal pair. A tap on the port records the board's replies, so the
relay's acknowledgement time is measured the same way on both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gate_controller.drivers.relay_board_sim import RelayBoardSim
from gate_controller.drivers.relay_line import GarbledLine, parse
from gate_controller.drivers.serial_relay import SerialRelayGateIO, open_port
from gate_controller.gateio import GateInput

POLL_S = 0.002


class Tap:
    """Wraps the serial port: records each line the board sends, with its arrival time."""

    def __init__(self, ser: Any, sink: list[tuple[float, list[str]]]) -> None:
        self._ser = ser
        self._sink = sink
        self._buf = b""

    def read(self, n: int = 1) -> bytes:
        data = self._ser.read(n)
        self._buf += data
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            try:
                self._sink.append((time.monotonic(), parse(line)))
            except GarbledLine:
                self._sink.append((time.monotonic(), ["GARBLED"]))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ser, name)


@dataclass
class Bench:
    io: SerialRelayGateIO
    lanes: list[str]
    sim: RelayBoardSim | None
    interactive: bool
    heard: list[tuple[float, list[str]]] = field(default_factory=list)
    inputs: list[tuple[float, GateInput]] = field(default_factory=list)

    def poll_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.io.poll(time.monotonic()):
                self.inputs.append((time.monotonic(), item))
            if done():
                return True
            time.sleep(POLL_S)
        return done()

    def heard_since(self, since: float, *words: str) -> float | None:
        for t, line in self.heard:
            if t >= since and line[:len(words)] == list(words):
                return t
        return None

    def input_since(self, since: float, kind: str, **match: Any) -> float | None:
        for t, item in self.inputs:
            if t >= since and item.kind == kind and all(getattr(item, k) == v
                                                        for k, v in match.items()):
                return t
        return None


@pytest.fixture
def bench(hw_config, hw):
    g = hw_config.gate
    sim = None
    if g is None:
        sim = RelayBoardSim.start(channels=2)
        port, lanes, baud, interactive = sim.device, ["A", "B"], 115200, False
        hw.part("gate board", None)
    else:
        port, lanes, baud, interactive = g.port, list(g.lanes), g.baud, g.interactive
        hw.part("gate board", g.port)
    heard: list[tuple[float, list[str]]] = []
    io = SerialRelayGateIO(port, lanes, baud=baud, ping_s=0.5, timeout_s=1.5,
                           opener=lambda p, b: Tap(open_port(p, b), heard))
    b = Bench(io, lanes, sim, interactive, heard)
    start = time.monotonic()
    assert b.poll_until(lambda: b.heard_since(start, "BOARD") is not None, 5.0), \
        f"no relay/1 board answered HELLO on {port}"
    hw.timing("connect_ms", (b.heard_since(start, "BOARD") - start) * 1000)
    yield b
    for lane in lanes:
        io.set_output(lane, False)
    b.poll_until(lambda: False, 0.1)
    io.close()
    if sim is not None:
        sim.stop()


def _tester(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n>>> {text}")


def test_relay_opens_and_closes(bench: Bench, hw) -> None:
    lane = bench.lanes[0]
    for open_, name in ((True, "open"), (False, "close")):
        sent = time.monotonic()
        bench.io.set_output(lane, open_)
        ok = bench.poll_until(lambda v=open_, t=sent: bench.heard_since(t, "OK", "OUT", "1",
                                                                str(int(v))) is not None, 2.0)
        assert ok, f"the board did not acknowledge {name} of lane {lane} within 2 s"
        ms = (bench.heard_since(sent, "OK", "OUT", "1", str(int(open_))) - sent) * 1000
        hw.timing(f"relay_{name}_ms", ms)
        assert ms < 250, f"relay {name} acknowledged after {ms:.0f} ms"
        if bench.sim is not None:
            assert bench.sim.outputs[1] is open_


def test_passage_input_is_read(bench: Bench, hw, capsys) -> None:
    lane = bench.lanes[0]
    if bench.sim is None and not bench.interactive:
        pytest.skip("real board: set [gate] interactive = true and walk through when asked")
    start = time.monotonic()
    if bench.sim is not None:
        bench.sim.passage(1)
    else:
        _tester(capsys, f"WALK THROUGH lane {lane} (break the passage beam) within 30 s")
    ok = bench.poll_until(lambda: bench.input_since(start, "passage", lane=lane) is not None,
                          2.0 if bench.sim else 30.0)
    assert ok, f"no passage input from lane {lane}"
    hw.timing("passage_ms", (bench.input_since(start, "passage", lane=lane) - start) * 1000)


def test_fire_alarm_input_is_read(bench: Bench, hw, capsys) -> None:
    if bench.sim is None and not bench.interactive:
        pytest.skip("real board: set [gate] interactive = true and trigger the fire input")
    start = time.monotonic()
    if bench.sim is not None:
        bench.sim.raise_fire()
    else:
        _tester(capsys, "ACTIVATE the fire-alarm input within 30 s")
    ok = bench.poll_until(lambda: bench.input_since(start, "fire_alarm", active=True)
                          is not None, 2.0 if bench.sim else 30.0)
    assert ok, "the fire alarm was not reported"
    hw.timing("fire_on_ms", (bench.input_since(start, "fire_alarm", active=True) - start) * 1000)
    if bench.sim is not None:
        assert all(bench.sim.outputs.values()), "the board must hold every leaf open on fire"
    cleared = time.monotonic()
    if bench.sim is not None:
        bench.sim.clear_fire()
    else:
        _tester(capsys, "RELEASE the fire-alarm input within 30 s")
    ok = bench.poll_until(lambda: bench.input_since(cleared, "fire_alarm", active=False)
                          is not None, 2.0 if bench.sim else 30.0)
    assert ok, "the fire alarm clearing was not reported"
    hw.timing("fire_off_ms",
              (bench.input_since(cleared, "fire_alarm", active=False) - cleared) * 1000)
