"""`import-central-key FILE`: install central's CurveZMQ public key as keys/central.key.

Accepts only a zmq.auth public key file; a secret key file is refused (central's secret never
belongs on a gate box). The copy is written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import structlog
import zmq
import zmq.auth
import zmq.utils.z85

from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.device import DeviceLayout, copy_private
from provisioning.errors import CentralKeyError

log = structlog.get_logger("provisioning.central_key")


def check_public_key_file(path: Path) -> bytes:
    """Central's public key (Z85) from a zmq.auth file, or CentralKeyError saying why not."""
    if not path.is_file():
        raise CentralKeyError(f"{path} does not exist: copy central's public key file "
                              "(central.key, not central.key_secret) onto this box first")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise CentralKeyError(f"{path} is not a CurveZMQ key file ({exc}): ask central for "
                              "its public key file in zmq.auth format") from None
    if secret is not None:
        raise CentralKeyError(f"{path} holds a SECRET key: never copy central's secret to a "
                              "gate; import its public key file (central.key) instead")
    if public is None or len(public) != 40:
        raise CentralKeyError(f"{path} has no valid public key: ask central for its public "
                              "key file in zmq.auth format")
    try:
        zmq.utils.z85.decode(public)
    except (ValueError, KeyError):
        raise CentralKeyError(f"{path} has a malformed public key: ask central for the file "
                              "again") from None
    return public


def import_central_key(layout: DeviceLayout, source: Path) -> Path:
    """Validate `source` and install it as the device's central.key; returns the path."""
    check_public_key_file(source)
    layout.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    copy_private(source, layout.central_public_key)
    log.info("central_key_imported")
    return layout.central_public_key


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
