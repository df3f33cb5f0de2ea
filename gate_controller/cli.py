"""Command table of `python -m gate_controller CMD`; each command lives in its own module."""

from __future__ import annotations

from collections.abc import Sequence

from foundation.cli import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("gate_controller.commands.run", "run the gate controller from a settings file"),
    "simulate": ("gate_controller.commands.simulate",
                 "run the controller on the simulated gate, with a console view"),
    "status": ("gate_controller.commands.status", "query a running controller's lane states"),
    "sim": ("gate_controller.commands.sim",
            "drive a running simulator: fire alarm, passages, I/O faults"),
    "pinger": ("gate_controller.commands.pinger",
               "send daemon heartbeats (a stand-in daemon for drills and benchmarks)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("python -m gate_controller", COMMANDS, argv)
