"""`python -m gate_controller simulate`: the controller on the simulated gate, for the demo.

Uses the [gate] section of --config (or the defaults) with the driver forced to `simulated`.
Inputs: the control socket (`python -m gate_controller sim ...`), SIGUSR1 / SIGUSR2 (raise /
clear the fire alarm), or lines typed into the console view.
"""

from __future__ import annotations

import argparse
import threading

from foundation.logs import configure_logging
from gate_controller.app import Controller, run_controller
from gate_controller.client import GateClient
from gate_controller.commands import add_settings_options, gate_settings, logging_settings
from gate_controller.console import ConsoleView
from gate_controller.drivers.simulated import SimulatedGateIO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser, lanes=True)
    parser.add_argument("--no-console", action="store_true",
                        help="no console view (logs only), e.g. under a test or supervisor")


def run(args: argparse.Namespace) -> int:
    gs = gate_settings(args).model_copy(update={"driver": "simulated"})
    level, json_logs = logging_settings(args)
    configure_logging("warning" if not args.no_console and level == "info" else level,
                      json_logs)
    stop = threading.Event()
    views: list[ConsoleView] = []

    def ready(controller: Controller) -> None:
        if args.no_console:
            return
        assert isinstance(controller.io, SimulatedGateIO)
        client = GateClient.from_settings(gs, "daemon", timeout_ms=500)
        view = ConsoleView(client, controller.io, stop)
        view.start()
        views.append(view)

    try:
        return run_controller(gs, on_ready=ready, stop=stop)
    finally:
        for view in views:
            view.close()
