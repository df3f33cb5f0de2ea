"""`add-staff NAME --role ROLE`: create or update a kiosk staff account in the store.

The password is never taken from the command line: it is prompted (twice, hidden) on a
terminal, or read as one line from stdin when stdin is not a terminal (automation). It is hashed
with the kiosk's scrypt scheme; logs carry the role only, never the name or the password.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from typing import TextIO

import structlog

from edge.kiosk.auth import ROLES
from foundation.clock import Clock, SystemClock
from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.device import Device
from provisioning.errors import StaffError

log = structlog.get_logger(__name__)

MIN_PASSWORD_CHARS = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise StaffError(f"staff name {name!r} is not allowed: use 1-64 letters, digits, "
                         "'.', '_', '-' or '@', starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise StaffError(f"the password is shorter than {MIN_PASSWORD_CHARS} characters: "
                         "choose a longer one")
    if password != password.strip():
        raise StaffError("the password starts or ends with white space: choose one without")
    return password


def read_password(stdin: TextIO | None = None) -> str:
    """Prompt twice on a terminal; otherwise read one line from stdin."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("password for the new staff account: ")
        second = getpass.getpass("again: ")
        if first != second:
            raise StaffError("the two passwords differ: run add-staff again")
        return first
    line = stdin.readline()
    if not line:
        raise StaffError("no password on stdin: pipe it in (one line) or run on a terminal "
                         "to be prompted")
    return line.rstrip("\r\n")


def add_staff(device: Device, name: str, role: str, password: str,
              clock: Clock | None = None) -> None:
    """Hash `password` and upsert the account in the device's store."""
    from edge.consent.store import ConsentStore
    from edge.kiosk.passwords import PasswordPolicyError, hash_password

    check_name(name)
    if role not in ROLES:
        raise StaffError(f"role {role!r} is unknown: use one of {', '.join(ROLES)}")
    check_password(password)
    try:
        encoded = hash_password(password)
    except PasswordPolicyError as exc:
        raise StaffError(str(exc)) from None
    s = device.settings
    store = ConsentStore.open(s.store_path, s.store_key_file, s.hmac_secret_file,
                              clock or SystemClock())
    try:
        store.staff.upsert(name, role, encoded)
    finally:
        store.close()
    log.info("staff_upserted", role=role)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="staff login name")
    parser.add_argument("--role", required=True, choices=ROLES, help="what the account may do")
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    check_name(args.name)
    password = read_password()
    add_staff(device, args.name, args.role, password)
    console().print(f"staff account {args.name!r} saved (role {args.role}); it can log in to "
                    "the kiosk now")
    return 0
