"""serial_relay driver against the relay/1 board simulator on a pty pair (os.openpty).

A vanished or garbled port, a silent board, a missing port: always a `fault` input, then a
reconnect and `restored`, never an exception out of `poll`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gate_controller.drivers.relay_board_sim import RelayBoardSim
from gate_controller.drivers.relay_line import GarbledLine, frame, parse
from gate_controller.drivers.serial_relay import SerialRelayGateIO
from gate_controller.gateio import GateInput


@pytest.fixture
def board(tmp_path: Path) -> Iterator[RelayBoardSim]:
    sim = RelayBoardSim.start(channels=2, link=tmp_path / "ttyRELAY", watchdog_s=5.0)
    yield sim
    sim.stop()


def make_io(port: str) -> SerialRelayGateIO:
    return SerialRelayGateIO(port, ["A", "B"], ping_s=0.05, timeout_s=0.4, reconnect_max_s=0.2)


def pump(io: SerialRelayGateIO, until: Callable[[list[GateInput]], bool],
         timeout: float = 3.0) -> list[GateInput]:
    """Poll the driver like the server does, until `until(inputs so far)` or fail."""
    seen: list[GateInput] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        seen += io.poll(time.monotonic())
        if until(seen):
            return seen
        time.sleep(0.005)
    raise AssertionError(f"timed out; inputs so far: {seen}")


def kinds(seen: list[GateInput]) -> list[str]:
    return [i.kind for i in seen]


def connected(io: SerialRelayGateIO, n: int = 1) -> Callable[[list[GateInput]], bool]:
    return lambda _seen: io.connects >= n and io._phase == "up"


def test_line_codec_round_trip_and_rejects() -> None:
    assert parse(frame("OUT 1 1")[:-1]) == ["OUT", "1", "1"]
    good = frame("PASS 2")[:-1]
    for bad in (b"", good[:-1], good.replace(b"2", b"3", 1), b"PASS 2", b"\x00PASS*00",
                b"A" * 200, good[:-2] + b"ZZ"):
        with pytest.raises(GarbledLine):
            parse(bad)


@given(st.binary(max_size=120))
def test_codec_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(GarbledLine):
        parse(data)


def test_outputs_inputs_and_fire_alarm(board: RelayBoardSim) -> None:
    io = make_io(board.device)
    try:
        pump(io, connected(io))
        io.set_output("A", True)
        io.set_alarm("B", True)
        pump(io, lambda _: board.outputs[1] and board.alarms[2])
        assert board.outputs[2] is False
        board.passage(2)
        seen = pump(io, lambda s: "passage" in kinds(s))
        assert GateInput("passage", lane="B") in seen
        board.raise_fire()
        seen = pump(io, lambda s: "fire_alarm" in kinds(s))
        assert GateInput("fire_alarm", active=True) in seen
        board.clear_fire()
        seen = pump(io, lambda s: "fire_alarm" in kinds(s))
        assert GateInput("fire_alarm", active=False) in seen
        io.set_output("A", False)
        pump(io, lambda _: not board.outputs[1])
    finally:
        io.close()


def test_garbled_line_faults_and_reconnects(board: RelayBoardSim) -> None:
    io = make_io(board.device)
    try:
        pump(io, connected(io))
        io.set_output("B", True)
        pump(io, lambda _: board.outputs[2])
        board.garble()
        seen = pump(io, lambda s: "restored" in kinds(s))
        assert kinds(seen)[0] == "fault" and "garbled" in seen[0].reason
        assert board.hellos == 2 and board.outputs[2] is True
    finally:
        io.close()


def test_vanished_port_faults_and_reconnects_when_replugged(board: RelayBoardSim) -> None:
    io = make_io(board.device)
    try:
        pump(io, connected(io))
        io.set_output("A", True)
        pump(io, lambda _: board.outputs[1])
        board.vanish()
        seen = pump(io, lambda s: "fault" in kinds(s))
        # while unplugged, polling keeps failing quietly: one fault, no exception
        time.sleep(0.3)
        assert kinds(io.poll(time.monotonic())) == []
        board.replug()  # a fresh pty: the board lost its outputs
        assert board.outputs[1] is False
        seen = pump(io, lambda s: "restored" in kinds(s))
        pump(io, lambda _: board.outputs[1])  # the driver re-sent the wanted output
        assert io.connects == 2 and kinds(seen) == ["restored"]
    finally:
        io.close()


def test_silent_board_faults_then_recovers(board: RelayBoardSim) -> None:
    io = make_io(board.device)
    try:
        pump(io, connected(io))
        board.mute()
        seen = pump(io, lambda s: "fault" in kinds(s))
        assert "silent" in seen[-1].reason or "HELLO" in seen[-1].reason
        board.unmute()
        pump(io, lambda s: "restored" in kinds(s))
    finally:
        io.close()


def test_missing_port_at_start_is_a_fault_not_a_crash(tmp_path: Path) -> None:
    io = make_io(str(tmp_path / "nope"))
    seen = pump(io, lambda s: "fault" in kinds(s))
    assert "cannot open" in seen[0].reason
    io.close()


def test_board_with_too_few_channels_is_refused(tmp_path: Path) -> None:
    sim = RelayBoardSim.start(channels=1, link=tmp_path / "tty1")
    io = make_io(sim.device)
    try:
        seen = pump(io, lambda s: "fault" in kinds(s))
        assert "channels" in seen[0].reason
    finally:
        io.close()
        sim.stop()


def test_board_watchdog_locks_leaves_when_host_goes_quiet(tmp_path: Path) -> None:
    sim = RelayBoardSim.start(channels=2, link=tmp_path / "tty2", watchdog_s=0.3)
    io = make_io(sim.device)
    try:
        pump(io, connected(io))
        io.set_output("A", True)
        pump(io, lambda _: sim.outputs[1])
    finally:
        io.close()  # the host stops pinging
    try:
        end = time.monotonic() + 2
        while sim.outputs[1] and time.monotonic() < end:
            time.sleep(0.02)
        assert sim.outputs[1] is False
    finally:
        sim.stop()
