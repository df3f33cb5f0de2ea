"""`python -m gate_controller pinger`: heartbeats as the daemon would send them.

A stand-in daemon for drills, the integration tests and bench/gate.py: while it runs, lanes
are automatic (`closed`); kill it and they fall back to `manual` within the heartbeat timeout.
It uses the daemon's key ([gate] daemon_secret_key_file), as the daemon does.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.commands import add_settings_options, gate_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between beats")


def run(args: argparse.Namespace) -> int:
    gs = gate_settings(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = GateClient.from_settings(gs, "daemon", subscribe=False)
    try:
        while not stop.is_set():
            with contextlib.suppress(GateUnavailableError):  # it may be starting: keep trying
                client.heartbeat()
            stop.wait(args.interval)
    finally:
        client.close()
    return 0
