"""`import-central-key FILE`: install central's CurveZMQ public key as keys/central.key.

Accepts only a zmq.auth public key file; a secret key file is refused (central's secret never
belongs on a gate box). The copy is written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.device import check_public_key_file, import_central_key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="central's public key file (zmq.auth format)")
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    target = import_central_key(device.layout, args.file)
    public = check_public_key_file(target).decode("ascii")
    if device.settings.telemetry.central_public_key_file not in (None, target):
        console().print(f"note: settings name {device.settings.telemetry.central_public_key_file}"
                        f" as central's key, not {target}")
    console().print(f"central public key installed at {target}")
    console().print(f"  check with central that its public key is {public}")
    return 0
