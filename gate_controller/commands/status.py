"""`python -m gate_controller status`: health and lane states of a running controller.

Exit 0 when the controller answered, 1 (with one line on stderr) when it did not.
"""

from __future__ import annotations

import argparse
import json

from gate_controller.client import GateClient
from gate_controller.commands import add_settings_options, gate_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--timeout-ms", type=int, default=1000, help="wait this long for an ack")


def run(args: argparse.Namespace) -> int:
    gs = gate_settings(args)
    client = GateClient(gs.command_endpoint, gs.event_endpoint, args.timeout_ms, subscribe=False)
    try:
        ack = client.status_detail()
    finally:
        client.close()
    lanes = {lane: state.value for lane, state in (ack.lanes or {}).items()}
    if args.json:
        print(json.dumps({"lanes": lanes, **(ack.info or {})}))
        return 0
    for key, value in (ack.info or {}).items():
        print(f"{key:<11} {value}")
    for lane, state in lanes.items():
        print(f"lane {lane:<6} {state}")
    return 0
