"""The simulator's small console view: the lane table, one line per gate event, typed inputs.

It is a plain client of the controller (SUB for events, `status` for the table) holding the
daemon's key (it plays the daemon), so it shows exactly what the daemon would see. It prints
the lane table at start, then one line per event.
On a terminal, typed lines drive the simulated hardware (`fire on|off`, `pass LANE`, `fail`,
`recover`) and play the other parties: `daemon on|off` sends heartbeats as the edge daemon
would (lanes go automatic, `closed`), `open LANE` / `deny LANE` issue a daemon grant / denial,
`reset LANE` is the staff reset (after a fire alarm or a tailgating alarm); `show` reprints the
table, `help` lists the commands. Without a terminal, drive it with `python -m gate_controller
sim ...` and watch the log.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import TextIO

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.drivers.sim_control import apply
from gate_controller.drivers.simulated import SimulatedGateIO
from wire.gate import (
    Ack,
    FaultEvent,
    PassageEvent,
    ProtocolError,
    StateEvent,
    TailgatingEvent,
    new_grant_id,
)

HELP = """\
hardware:  pass LANE | fire on | fire off | fail | recover
daemon:    daemon on | daemon off (heartbeats) | open LANE (5 s grant) | deny LANE
staff:     reset LANE (after a fire alarm or a tailgating alarm)
view:      show | help          quit: Ctrl-C (lanes are left in the safe state)"""
GRANT_TTL_MS = 5000
HEARTBEAT_S = 0.3


class ConsoleView:
    def __init__(self, client: GateClient, sim: SimulatedGateIO, stop: threading.Event,
                 out: TextIO | None = None, keyboard: bool | None = None) -> None:
        """`client`: a subscribed GateClient with the daemon's key; the view closes it."""
        self.console = Console(file=out or sys.stdout, highlight=False)
        self.client = client
        self.sim = sim
        self.stop = stop
        self._beating = threading.Event()
        self._threads = [threading.Thread(target=self._events, name="gate-console", daemon=True),
                         threading.Thread(target=self._heartbeats, name="gate-console-beat",
                                          daemon=True)]
        if keyboard is None:
            keyboard = sys.stdin is not None and sys.stdin.isatty()
        self.keyboard = keyboard
        if keyboard:
            self._threads.append(threading.Thread(target=self._keys, name="gate-keys",
                                                  daemon=True))

    def start(self) -> None:
        self.console.print(f"[bold]gate simulator[/bold] lanes {', '.join(self.sim.lanes)}: "
                           "no daemon yet, so lanes are [bold]manual[/bold] (staff operate "
                           "them); type `daemon on` to play the daemon")
        if self.keyboard:
            self.console.print(HELP)
        else:
            self.console.print("no terminal: drive it with `python -m gate_controller sim ...`")
        for t in self._threads:
            t.start()

    def table(self) -> Group:
        """The lane table and, below it, the controller's health line."""
        try:
            ack = self.client.status_detail()
            lanes = {lane: s.value for lane, s in (ack.lanes or {}).items()}
            info = ack.info or {}
        except (GateUnavailableError, ProtocolError) as exc:
            lanes, info = {}, {"controller": f"not answering ({type(exc).__name__})"}
        table = Table("lane", "state", "leaf", "alarm")
        outputs, alarms = self.sim.outputs(), self.sim.alarms()
        for lane in self.sim.lanes:
            table.add_row(lane, lanes.get(lane, "?"), "OPEN" if outputs[lane] else "closed",
                          "ALARM" if alarms[lane] else "")
        health = Text("  ".join(f"{k}: {v}" for k, v in info.items()))
        return Group(table, health)

    def _events(self) -> None:
        self.console.print(self.table())
        while not self.stop.is_set():
            event = self.client.next_event(200)
            if event is None:
                continue
            if isinstance(event, StateEvent):
                line = f"lane {event.lane}: {event.state.value} ({event.reason})"
            elif isinstance(event, PassageEvent):
                line = f"lane {event.lane}: passage"
            elif isinstance(event, TailgatingEvent):
                line = (f"[red]lane {event.lane}: TAILGATING (alarm on; `reset {event.lane}` "
                        "silences it)[/red]")
            else:
                assert isinstance(event, FaultEvent)
                line = f"[yellow]gate I/O {'FAULT' if event.active else 'ok'}: {event.reason}"
            self.console.print(f"#{event.seq} {line}")

    def _heartbeats(self) -> None:
        while not self.stop.is_set():
            if self._beating.is_set():
                # no ack: the table and the events say what the controller makes of it
                with contextlib.suppress(GateUnavailableError):
                    self.client.heartbeat()
            self.stop.wait(HEARTBEAT_S)

    def _keys(self) -> None:
        for raw in sys.stdin:
            if self.stop.is_set():
                return
            self.handle_line(raw)

    def handle_line(self, raw: str) -> None:
        """Carry out one typed line; problems are printed, never raised."""
        words = raw.split()
        if not words:
            return
        verb, args = words[0].lower(), words[1:]
        try:
            if verb == "show" and not args:
                self.console.print(self.table())
            elif verb == "help" and not args:
                self.console.print(HELP)
            elif verb == "daemon" and args in (["on"], ["off"]):
                (self._beating.set if args[0] == "on" else self._beating.clear)()
                self.console.print("playing the daemon: heartbeats every "
                                   f"{HEARTBEAT_S} s" if args[0] == "on" else
                                   "daemon gone: no heartbeats (lanes fall back to manual)")
            elif verb == "open" and len(args) == 1:
                grant = new_grant_id(time.monotonic())  # the controller's clock, this box
                self._report(self.client.open(args[0], grant, GRANT_TTL_MS),
                             f"grant {grant} accepted on lane {args[0]} "
                             f"({GRANT_TTL_MS // 1000} s or one passage)")
            elif verb == "deny" and len(args) == 1:
                self._report(self.client.deny(args[0]), f"lane {args[0]}: denied")
            elif verb == "reset" and len(args) == 1:
                self._report(self.client.reset(args[0], "console reset", "console"),
                             f"lane {args[0]}: reset")
            elif verb == "fire" and args in (["on"], ["off"]):
                self._sim({"sim": "fire", "active": args[0] == "on"})
            elif verb == "pass" and len(args) == 1:
                self._sim({"sim": "pass", "lane": args[0]})
            elif verb in ("fail", "recover") and not args:
                self._sim({"sim": verb})
            else:
                self.console.print(f"[red]not understood: {raw.strip()[:40]!r}[/red]\n{HELP}")
        except (GateUnavailableError, ProtocolError) as exc:
            self.console.print(f"[red]{exc}[/red]")

    def _report(self, ack: Ack, done: str) -> None:
        if ack.ok:
            self.console.print(done)
        else:
            self.console.print(f"[red]refused ({ack.code}): {ack.error}[/red]")

    def _sim(self, request: dict[str, object]) -> None:
        reply = apply(self.sim, {"schema": "gate-sim/1", **request})
        if not reply["ok"]:
            self.console.print(f"[red]{reply['error']}[/red]")

    def close(self) -> None:
        self.stop.set()
        for t in self._threads[:2]:
            t.join(timeout=1)
        self.client.close()
