"""`add-staff NAME --role ROLE`: create or update a kiosk staff account, and the staff commands'
shared way to the store (`list-staff`, `disable-staff`, `unlock-staff` use it too).

The password is never taken from the command line: it is prompted (twice, hidden) on a
terminal, or read as one line from stdin when stdin is not a terminal (automation). It is hashed
with the kiosk's scrypt scheme here, so only the hash travels; logs carry the role only, never
the name or the password.

Which way to the store: the command first tries to take the store's lock (edge.consent.lock).
When it gets it, no daemon runs, and it opens the store directly as before. When another
process holds it, the command goes through the running daemon's admin socket
(edge.kiosk.admin_socket, `<store>.admin.sock`): it never opens the store beside it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import structlog

from edge.consent.errors import InvalidStaffError, StoreBusyError
from edge.consent.staff import MIN_PASSWORD_CHARS
from edge.consent.staff import check_name as _check_name
from edge.consent.staff import check_password as _check_password
from edge.kiosk.auth import ROLES
from foundation.clock import Clock, SystemClock
from foundation.passwords import hash_new_password
from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.device import Device
from provisioning.errors import StaffError

log = structlog.get_logger(__name__)

__all__ = ["MIN_PASSWORD_CHARS", "add_staff", "check_name", "check_password", "read_password",
           "through_store"]


def check_name(name: str) -> str:
    try:
        return _check_name(name)
    except InvalidStaffError as exc:
        raise StaffError(str(exc)) from None


def check_password(password: str) -> str:
    try:
        return _check_password(password)
    except InvalidStaffError as exc:
        raise StaffError(str(exc)) from None


def read_password(stdin: TextIO | None = None) -> str:
    """Prompt twice on a terminal; otherwise read one line from stdin."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("password for the new staff account: ")
        second = getpass.getpass("again: ")
        if first != second:
            raise StaffError("the two passwords differ: run add-staff again")
        return first
    line = stdin.readline(4096)
    if not line:
        raise StaffError("no password on stdin: pipe it in (one line) or run on a terminal "
                         "to be prompted")
    return line.rstrip("\r\n")


def through_store(device: Device, direct: Callable[[Any], Any], request: dict[str, Any],
                  clock: Clock | None = None) -> tuple[str, Any]:
    """Run `direct(store)` on the store when no other process holds it, else send `request`
    to the running daemon's admin socket. Returns ("store", direct's result) or ("daemon",
    the socket's answer); a refusal from the daemon is a StaffError with its words."""
    from edge.consent.store import ConsentStore
    from edge.kiosk.admin_socket import admin_request, admin_socket_path

    s = device.settings
    try:
        store = ConsentStore.open(s.store_path, s.store_key_file, s.hmac_secret_file,
                                  clock or SystemClock())
    except StoreBusyError as busy:
        return "daemon", _through_daemon(admin_socket_path(s.store_path), str(busy), request,
                                         admin_request)
    try:
        return "store", direct(store)
    except InvalidStaffError as exc:
        raise StaffError(str(exc)) from None
    finally:
        store.close()


def _through_daemon(path: Path, busy: str, request: dict[str, Any],
                    send: Callable[[Path, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    if not path.exists():
        raise StaffError(f"{busy} (it serves no admin socket at {path}: a daemon still "
                         "starting serves it within a minute, so try again then; a daemon "
                         "older than this provisioning or another tool must be stopped)")
    reply = send(path, request)
    if not reply["ok"]:
        raise StaffError(f"the daemon refused: {reply.get('message', 'no reason given')}")
    log.info("staff_via_daemon", op=request.get("op"))
    return reply


def add_staff(device: Device, name: str, role: str, password: str,
              clock: Clock | None = None) -> str:
    """Hash `password` and upsert the account: in the store, or through the running daemon.
    Returns which way it went ("store" or "daemon")."""
    check_name(name)
    if role not in ROLES:
        raise StaffError(f"role {role!r} is unknown: use one of {', '.join(ROLES)}")
    check_password(password)
    encoded = hash_new_password(password, StaffError)
    way, _ = through_store(device, lambda store: store.staff.upsert(name, role, encoded),
                           {"op": "upsert_staff", "name": name, "role": role,
                            "password_hash": encoded}, clock)
    log.info("staff_upserted", role=role, way=way)
    return way


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="staff login name")
    parser.add_argument("--role", required=True, choices=ROLES, help="what the account may do")
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    check_name(args.name)
    password = read_password()
    way = add_staff(device, args.name, args.role, password)
    how = " (through the running daemon)" if way == "daemon" else ""
    console().print(f"staff account {args.name!r} saved (role {args.role}){how}; it can log in "
                    "to the kiosk now")
    return 0
