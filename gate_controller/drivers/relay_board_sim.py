"""A relay/1 board simulator on a pseudo-terminal pair, for tests, drills and the hw suite.

`RelayBoardSim.start(channels, link=PATH)` opens a pty, answers the host on the master side
from a thread, and (optionally) keeps a symlink at `link` pointing at the slave device, like
/dev/serial/by-id: after `vanish()` + `replug()` the link points at a fresh pty, so the driver's
reconnect finds the "same" port again. Test controls: `raise_fire()`, `clear_fire()`,
`passage(ch)`, `garble()`, `mute()`/`unmute()` (board stops answering), `vanish()`, `replug()`.
The board's watchdog drops every leaf to locked (and alarms off) when the host has been silent
for `watchdog_s`, unless the fire input holds them open.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from pathlib import Path

from gate_controller.drivers.relay_line import GarbledLine, frame, parse


class RelayBoardSim:
    def __init__(self, channels: int = 2, link: Path | None = None,
                 watchdog_s: float = 2.0) -> None:
        self.channels = channels
        self.link = link
        self.watchdog_s = watchdog_s
        self.outputs = dict.fromkeys(range(1, channels + 1), False)
        self.alarms = dict.fromkeys(range(1, channels + 1), False)
        self.fire = False
        self.muted = False
        self.hellos = 0
        self.lines_in = 0
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self.port = ""
        self._last_rx = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, channels: int = 2, link: Path | None = None,
              watchdog_s: float = 2.0) -> RelayBoardSim:
        sim = cls(channels, link, watchdog_s)
        sim.replug()
        sim._thread = threading.Thread(target=sim._run, name="relay-board-sim", daemon=True)
        sim._thread.start()
        return sim

    # ---- controls ------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """The path the driver should open (the link if there is one)."""
        return str(self.link) if self.link else self.port

    def replug(self) -> None:
        """A fresh pty (the board plugged back in, its outputs at their power-on default)."""
        master, slave = os.openpty()
        tty.setraw(slave)
        with self._lock:
            self._master, self._slave = master, slave
            self.port = os.ttyname(slave)
            for ch in self.outputs:
                self.outputs[ch] = self.fire
                self.alarms[ch] = False
        if self.link is not None:
            tmp = self.link.with_suffix(".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.port)
            tmp.replace(self.link)

    def vanish(self) -> None:
        """The USB cable is pulled: the pty disappears under the driver."""
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = None
        for fd in (master, slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def raise_fire(self) -> None:
        self._set_fire(True)

    def clear_fire(self) -> None:
        self._set_fire(False)

    def _set_fire(self, active: bool) -> None:
        with self._lock:
            changed = self.fire != active
            self.fire = active
            if active:
                for ch in self.outputs:
                    self.outputs[ch] = True  # the fire loop unlocks in hardware too
        if changed:
            self._send(f"FIRE {int(active)}")

    def passage(self, channel: int) -> None:
        self._send(f"PASS {channel}")

    def garble(self) -> None:
        self._send_raw(b"\x00\xffPASS 1*ZZ\x07\n")

    def mute(self) -> None:
        self.muted = True

    def unmute(self) -> None:
        self.muted = False

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.vanish()

    # ---- the board -----------------------------------------------------------------------
    def _send(self, payload: str) -> None:
        self._send_raw(frame(payload))

    def _send_raw(self, data: bytes) -> None:
        with self._lock:
            fd = self._master
        if fd is not None:
            with contextlib.suppress(OSError):
                os.write(fd, data)

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            with self._lock:
                fd = self._master
            if fd is None:
                buf = b""
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.01)
                data = os.read(fd, 1024) if ready else b""
            except OSError:  # closed under us (vanish) or no slave open
                time.sleep(0.01)
                continue
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self._handle(line)
            self._watchdog()

    def _watchdog(self) -> None:
        if time.monotonic() - self._last_rx > self.watchdog_s:
            with self._lock:
                for ch in self.outputs:
                    self.outputs[ch] = self.fire
                    self.alarms[ch] = False

    def _handle(self, line: bytes) -> None:
        try:
            words = parse(line)
        except GarbledLine:
            if not self.muted:
                self._send("ERR checksum")
            return
        self._last_rx = time.monotonic()
        self.lines_in += 1
        if self.muted:
            return
        head, args = words[0], words[1:]
        if head == "HELLO":
            self.hellos += 1
            self._send(f"BOARD relay/1 CH={self.channels} FIRE={int(self.fire)}")
        elif head == "PING" and len(args) == 1:
            self._send(f"PONG {args[0]}")
        elif head in ("OUT", "ALM") and len(args) == 2 and args[0].isdigit() \
                and args[1] in ("0", "1") and int(args[0]) in self.outputs:
            ch, on = int(args[0]), args[1] == "1"
            with self._lock:
                if head == "OUT":
                    self.outputs[ch] = on or self.fire
                else:
                    self.alarms[ch] = on
            self._send(f"OK {head} {ch} {int(on)}")
        else:
            self._send("ERR unknown")
