"""`serial_relay`: a relay/IO board on a serial port, spoken to in the relay/1 line protocol.

Lane i (in settings order) is board channel i+1. The driver never blocks: `poll` reads what
has arrived, answers the board's handshake, pings it every `ping_s`, and, when the port
vanishes, a line is garbled, the handshake fails or the board stops answering for `timeout_s`,
closes the port, reports a `fault` input once and reconnects with a capped backoff. After a
reconnect it reports `restored` and re-sends every wanted output (the board may have rebooted).
The line protocol is documented in README.md, "serial_relay line protocol".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import serial
import structlog

from gate_controller.drivers.relay_line import GarbledLine, frame, parse
from gate_controller.gateio import GateInput

log = structlog.get_logger(__name__)

MAX_BUFFER = 4096


def open_port(port: str, baud: int) -> Any:
    """The real port: non-blocking reads and writes, exclusive use."""
    return serial.Serial(port=port, baudrate=baud, timeout=0, write_timeout=0, exclusive=True)


class SerialRelayGateIO:
    """`GateIO` over a relay/1 board. `opener(port, baud)` is the seam for other transports."""

    def __init__(self, port: str, lanes: list[str], *, baud: int = 115200,
                 ping_s: float = 0.5, timeout_s: float = 1.5, reconnect_max_s: float = 5.0,
                 opener: Callable[[str, int], Any] = open_port) -> None:
        self.port, self.baud, self.lanes = port, baud, list(lanes)
        self.channel = {lane: i + 1 for i, lane in enumerate(self.lanes)}
        self.lane_of = {i + 1: lane for i, lane in enumerate(self.lanes)}
        self.ping_s, self.timeout_s, self.reconnect_max_s = ping_s, timeout_s, reconnect_max_s
        self._opener = opener
        self._ser: Any = None
        self._phase = "down"  # down -> hello -> up
        self._buf = b""
        self._outputs = dict.fromkeys(self.lanes, False)
        self._alarms = dict.fromkeys(self.lanes, False)
        self._dirty: set[tuple[str, str]] = set()
        self._inputs: list[GateInput] = []
        self._fire = False
        self._fault_reported = False
        self._backoff = 0.1
        self._next_attempt = 0.0
        self._deadline = 0.0
        self._last_rx = 0.0
        self._last_ping = 0.0
        self._ping_seq = 0
        self.connects = 0

    # ---- GateIO ------------------------------------------------------------------------
    def set_output(self, lane: str, open_: bool) -> None:
        if lane in self._outputs:
            self._outputs[lane] = open_
            self._dirty.add(("OUT", lane))

    def set_alarm(self, lane: str, on: bool) -> None:
        if lane in self._alarms:
            self._alarms[lane] = on
            self._dirty.add(("ALM", lane))

    def poll(self, now: float) -> list[GateInput]:
        try:
            if self._phase == "down":
                if now >= self._next_attempt:
                    self._connect(now)
            else:
                self._read(now)
                if self._phase == "hello" and now > self._deadline:
                    self._lost("board did not answer HELLO", now)
                elif self._phase == "up":
                    if now - self._last_rx > self.timeout_s:
                        self._lost(f"board silent for {self.timeout_s:g} s", now)
                    else:
                        if now - self._last_ping >= self.ping_s:
                            self._ping_seq = (self._ping_seq + 1) % 100000
                            self._write(f"PING {self._ping_seq}")
                            self._last_ping = now
                        self._flush()
        except GarbledLine as exc:
            self._lost(f"garbled line from board: {exc}", now)
        except (serial.SerialException, OSError) as exc:
            self._lost(f"serial port error: {type(exc).__name__}", now)
        items, self._inputs = self._inputs, []
        return items

    def close(self) -> None:
        if self._ser is not None and self._phase == "up":
            with contextlib.suppress(serial.SerialException, OSError):
                self._flush()
        self._close_port()

    # ---- internals -----------------------------------------------------------------------
    def _connect(self, now: float) -> None:
        try:
            self._ser = self._opener(self.port, self.baud)
            self._ser.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as exc:
            self._ser = None
            self._lost(f"cannot open {self.port}: {type(exc).__name__}", now)
            return
        self._buf = b""
        self._phase = "hello"
        self._deadline = now + self.timeout_s
        self._write("HELLO")

    def _write(self, payload: str) -> None:
        self._ser.write(frame(payload))

    def _flush(self) -> None:
        for kind, lane in sorted(self._dirty):
            value = self._outputs[lane] if kind == "OUT" else self._alarms[lane]
            self._write(f"{kind} {self.channel[lane]} {int(value)}")
        self._dirty.clear()

    def _read(self, now: float) -> None:
        waiting = self._ser.in_waiting
        data = self._ser.read(waiting or 1)
        if not data:
            return
        self._buf += data
        if len(self._buf) > MAX_BUFFER and b"\n" not in self._buf:
            raise GarbledLine("no line end in 4 KiB")
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self._line(parse(line), now)

    def _line(self, words: list[str], now: float) -> None:
        head = words[0]
        if self._phase == "hello":
            if head != "BOARD":
                return  # stale output from before our HELLO
            fields = dict(w.split("=", 1) for w in words[2:] if "=" in w)
            if len(words) < 2 or words[1] != "relay/1":
                raise GarbledLine(f"board speaks {words[1] if len(words) > 1 else '?'}, "
                                  "not relay/1")
            channels = int(fields.get("CH", "0")) if fields.get("CH", "").isdigit() else 0
            if channels < len(self.lanes):
                raise GarbledLine(f"board has {channels} channels, {len(self.lanes)} lanes set")
            self._phase = "up"
            self._last_rx = self._last_ping = now
            self._backoff = 0.1
            self.connects += 1
            log.info("serial_relay_connected", channels=channels, connects=self.connects)
            if self._fault_reported:
                self._fault_reported = False
                self._inputs.append(GateInput("restored"))
            self._fire_edge(fields.get("FIRE") == "1")
            self._dirty = {("OUT", lane) for lane in self.lanes} | {
                ("ALM", lane) for lane in self.lanes}
            self._flush()
            return
        self._last_rx = now
        if head == "PASS" and len(words) == 2 and words[1].isdigit():
            lane = self.lane_of.get(int(words[1]))
            if lane is not None:
                self._inputs.append(GateInput("passage", lane=lane))
        elif head == "FIRE" and len(words) == 2 and words[1] in ("0", "1"):
            self._fire_edge(words[1] == "1")
        elif head in ("PONG", "OK", "BOARD"):
            pass
        elif head == "ERR":
            log.warning("serial_relay_board_error", words=len(words))
        else:
            raise GarbledLine(f"unknown board message {head[:16]!r}")

    def _fire_edge(self, active: bool) -> None:
        if active != self._fire:
            self._fire = active
            self._inputs.append(GateInput("fire_alarm", active=active))

    def _lost(self, reason: str, now: float) -> None:
        self._close_port()
        self._phase = "down"
        self._next_attempt = now + self._backoff
        self._backoff = min(self._backoff * 2, self.reconnect_max_s)
        if not self._fault_reported:
            self._fault_reported = True
            log.warning("serial_relay_lost", reason=reason)
            self._inputs.append(GateInput("fault", reason=reason))

    def _close_port(self) -> None:
        if self._ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._ser.close()
            self._ser = None
