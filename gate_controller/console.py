"""The simulator's small console view: one line per gate event, and typed simulator inputs.

It is a plain client of the controller (SUB for events, `status` for the table), so it shows
exactly what the daemon would see. On a terminal, typed lines drive the simulator:
`fire on`, `fire off`, `pass A`, `fail`, `recover`, `show`, `help`.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from rich.console import Console
from rich.table import Table

from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.drivers.sim_control import apply
from gate_controller.drivers.simulated import SimulatedGateIO
from gate_controller.protocol import FaultEvent, PassageEvent, StateEvent, TailgatingEvent

HELP = "commands: fire on | fire off | pass LANE | fail | recover | show | help"


class ConsoleView:
    def __init__(self, command_endpoint: str, event_endpoint: str, sim: SimulatedGateIO,
                 stop: threading.Event, out: TextIO | None = None) -> None:
        self.console = Console(file=out or sys.stdout, highlight=False)
        self.client = GateClient(command_endpoint, event_endpoint, timeout_ms=500)
        self.sim = sim
        self.stop = stop
        self._threads = [threading.Thread(target=self._events, name="gate-console", daemon=True)]
        if sys.stdin is not None and sys.stdin.isatty():
            self._threads.append(threading.Thread(target=self._keys, name="gate-keys",
                                                  daemon=True))

    def start(self) -> None:
        self.console.print(f"[bold]gate simulator[/bold] lanes {', '.join(self.sim.lanes)}")
        self.console.print(HELP)
        for t in self._threads:
            t.start()

    def table(self) -> Table:
        table = Table("lane", "state", "leaf", "alarm")
        try:
            lanes = self.client.status()
        except GateUnavailableError:
            lanes = {}
        outputs, alarms = self.sim.outputs(), self.sim.alarms()
        for lane in self.sim.lanes:
            table.add_row(lane, lanes.get(lane, "?"), "OPEN" if outputs[lane] else "closed",
                          "ALARM" if alarms[lane] else "")
        return table

    def _events(self) -> None:
        while not self.stop.is_set():
            event = self.client.next_event(200)
            if event is None:
                continue
            if isinstance(event, StateEvent):
                line = f"lane {event.lane}: {event.state.value} ({event.reason})"
            elif isinstance(event, PassageEvent):
                line = f"lane {event.lane}: passage"
            elif isinstance(event, TailgatingEvent):
                line = f"[red]lane {event.lane}: TAILGATING[/red]"
            else:
                assert isinstance(event, FaultEvent)
                line = f"[yellow]gate I/O {'FAULT' if event.active else 'ok'}: {event.reason}"
            self.console.print(f"#{event.seq} {line}")

    def _keys(self) -> None:
        for raw in sys.stdin:
            if self.stop.is_set():
                return
            words = raw.split()
            if not words:
                continue
            if words[0] == "show":
                self.console.print(self.table())
                continue
            if words[0] == "fire" and len(words) == 2:
                reply = apply(self.sim, {"schema": "gate-sim/1", "sim": "fire",
                                         "active": words[1] == "on"})
            elif words[0] == "pass" and len(words) == 2:
                reply = apply(self.sim, {"schema": "gate-sim/1", "sim": "pass", "lane": words[1]})
            elif words[0] in ("fail", "recover"):
                reply = apply(self.sim, {"schema": "gate-sim/1", "sim": words[0]})
            else:
                self.console.print(HELP)
                continue
            if not reply["ok"]:
                self.console.print(f"[red]{reply['error']}")

    def close(self) -> None:
        self.stop.set()
        self._threads[0].join(timeout=1)
        self.client.close()
