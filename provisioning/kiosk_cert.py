"""`renew-kiosk-cert`: replace the kiosk's self-signed TLS certificate and key, nothing else.

The new certificate names localhost, 127.0.0.1 and the `--kiosk-name`s given; with none given
it keeps the names of the current certificate (so a renewal before expiry loses no name). The
new key and certificate are written beside the old ones first (`.new`, key 0600), then the old
key is shredded and both are moved into place. The store, the other keys and the settings are
not touched. The running daemon keeps serving the certificate it loaded until it restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from foundation.clock import Clock, SystemClock
from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.device import Device
from provisioning.errors import KioskCertError
from provisioning.shred import shred_file
from provisioning.tls import (
    DEFAULT_DAYS,
    certificate_days_left,
    certificate_names,
    kiosk_names,
    write_self_signed,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RenewedCert:
    cert: Path
    names: tuple[str, ...]
    days: float


def kiosk_cert_paths(device: Device) -> tuple[Path, Path]:
    """(certificate, key) the kiosk serves: the settings' paths, else the device layout's."""
    k, lay = device.settings.kiosk, device.layout
    return k.tls_cert_file or lay.tls_cert, k.tls_key_file or lay.tls_key


def _current_names(cert: Path) -> list[str]:
    try:
        return certificate_names(cert)
    except (OSError, ValueError):  # missing or unreadable: start from the defaults
        return []


def renew_kiosk_cert(device: Device, names: Sequence[str] | None = None,
                     clock: Clock | None = None, days: int = DEFAULT_DAYS) -> RenewedCert:
    """Write a fresh key and certificate for the kiosk; the old key is shredded.

    `names` None keeps the current certificate's names; a malformed name raises
    KioskNameError before anything is written.
    """
    clock = clock or SystemClock()
    cert, key = kiosk_cert_paths(device)
    hosts = kiosk_names(_current_names(cert) if names is None else names)
    if not cert.parent.is_dir() or not key.parent.is_dir():
        raise KioskCertError(f"the kiosk TLS folder {cert.parent} is missing: re-provision the "
                             "device (`init --force`) or fix kiosk.tls_cert_file/tls_key_file")
    new_cert = cert.with_name(cert.name + ".new")
    new_key = key.with_name(key.name + ".new")
    try:
        write_self_signed(new_cert, new_key, now=clock.now(), days=days, hosts=hosts,
                          common_name=f"kiosk-{device.settings.device.device_id}")
    except BaseException:
        shred_file(new_key)
        with contextlib.suppress(FileNotFoundError):
            new_cert.unlink()
        raise
    shred_file(key)
    os.replace(new_key, key)
    os.replace(new_cert, cert)
    left = certificate_days_left(cert, clock.now())
    log.info("kiosk_cert_renewed", names=len(hosts), days=round(left))
    return RenewedCert(cert, hosts, left)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Replaces only the kiosk certificate and its key (the old key is shredded); "
                     "restart the daemon afterwards so the kiosk serves the new one. Kiosk "
                     "screens that pinned the old certificate must be given the new one.")
    add_device_args(parser)
    parser.add_argument("--kiosk-name", action="append", default=None, metavar="NAME",
                        help="DNS name or IP address kiosk screens use to reach this box "
                             "(repeatable); localhost and 127.0.0.1 are always included; "
                             "default: the current certificate's names")


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    renewed = renew_kiosk_cert(device, args.kiosk_name)
    out = console()
    out.print(f"kiosk certificate renewed: {renewed.cert}")
    out.print(f"  names         {', '.join(renewed.names)}")
    out.print(f"  valid for     {renewed.days:.0f} days")
    out.print("restart the daemon (`systemctl restart consentgate`) so the kiosk serves it")
    return 0
