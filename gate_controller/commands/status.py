"""`python -m gate_controller status`: health and lane states of a running controller.

Exit 0 when the controller answered, 1 (with one line on stderr) when it did not. It uses the
operator's key ([gate] operator_secret_key_file), which the controller admits for `status`
only; `--key-file` names another key (the daemon's also works).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gate_controller.client import GateClient, GateUnavailableError
from gate_controller.commands import add_settings_options, gate_settings


def _positive_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 60_000:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole milliseconds in 1..60000")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_options(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--timeout-ms", type=_positive_ms, default=1000,
                        help="wait this long for an ack (1..60000, default 1000)")
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help="the client's secret key file (default [gate] "
                             "operator_secret_key_file)")


def run(args: argparse.Namespace) -> int:
    gs = gate_settings(args)
    if args.key_file is not None:
        gs = gs.model_copy(update={"operator_secret_key_file": args.key_file})
    client = GateClient.from_settings(gs, "operator", timeout_ms=args.timeout_ms,
                                      subscribe=False)
    try:
        ack = client.status_detail()
    except GateUnavailableError:
        raise GateUnavailableError(_not_answering(gs.command_endpoint, args.timeout_ms)) from None
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


def _not_answering(endpoint: str, timeout_ms: int) -> str:
    why = f"no gate controller answered at {endpoint} within {timeout_ms} ms"
    if endpoint.startswith("ipc://") and not Path(endpoint[len("ipc://"):]).exists():
        why += " (the socket file does not exist)"
    return (f"{why}: treat the lanes as manual; start it (`python -m gate_controller run --config "
            "FILE`) or pass the --config / --command-endpoint it uses; a controller that does "
            "not admit the operator key never connects (`python -m provisioning verify`)")
