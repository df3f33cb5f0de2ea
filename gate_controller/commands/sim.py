"""`python -m gate_controller sim ACTION`: drive a running simulated gate (demo, drills).

  sim fire on|off     raise / clear the fire-alarm input
  sim pass LANE       someone crosses LANE's passage sensor
  sim fail|recover    break / mend the simulated gate I/O
  sim show            outputs, alarms and the fire line
"""

from __future__ import annotations

import argparse
import json

from foundation.errors import ConsentGateError
from gate_controller.commands import add_settings_options, gate_settings
from gate_controller.drivers.sim_control import send


class SimulatorUnavailableError(ConsentGateError):
    """The simulator control socket did not answer or refused the request."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("action", choices=["fire", "pass", "fail", "recover", "show"])
    parser.add_argument("arg", nargs="?", help="fire: on|off; pass: the lane")


def run(args: argparse.Namespace) -> int:
    gs = gate_settings(args)
    request: dict[str, object] = {"sim": args.action}
    if args.action == "fire":
        if args.arg not in ("on", "off"):
            raise SimulatorUnavailableError("say `sim fire on` or `sim fire off`")
        request["active"] = args.arg == "on"
    elif args.action == "pass":
        if not args.arg:
            raise SimulatorUnavailableError("say which lane: `sim pass A`")
        request["lane"] = args.arg
    try:
        reply = send(gs.sim_control_endpoint, request)
    except TimeoutError as exc:
        raise SimulatorUnavailableError(f"{exc}; is `python -m gate_controller simulate` "
                                        "running with this endpoint?") from None
    if not reply.get("ok"):
        raise SimulatorUnavailableError(str(reply.get("error")))
    print(json.dumps(reply))
    return 0
