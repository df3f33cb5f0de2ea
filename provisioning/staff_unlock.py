"""`unlock-staff NAME`: clear a kiosk account's failed log-ins (the back-off lives in the
running daemon's memory, so this goes through the daemon; with the daemon stopped there is
nothing to clear)."""

from __future__ import annotations

import argparse
from typing import Any

from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.errors import StaffError
from provisioning.staff import check_name, through_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="staff login name")
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    name = check_name(args.name)

    def direct(store: Any) -> bool:
        return store.staff.get(name) is not None

    way, result = through_store(device_from_args(args), direct,
                                {"op": "unlock_staff", "name": name})
    if way == "store":
        if not result:
            raise StaffError(f"there is no staff account {name!r}: check with `python -m "
                             "provisioning list-staff`")
        console().print(f"the daemon is not running: {name!r} has no failed log-ins to clear "
                        "(they end with the daemon)")
        return 0
    console().print(f"{name!r} may log in again at once ({result['failures_cleared']} failed "
                    "log-in(s) cleared)")
    return 0
