"""`disable-staff NAME [--enable]`: stop a kiosk account logging in (its open sessions end at
once while the daemon runs), or let it in again; from the store or through the daemon."""

from __future__ import annotations

import argparse
from typing import Any

from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.errors import StaffError
from provisioning.staff import check_name, through_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="staff login name")
    parser.add_argument("--enable", action="store_true", help="enable the account again")
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    name = check_name(args.name)
    disabled = not args.enable

    def direct(store: Any) -> bool:
        return bool(store.staff.set_disabled(name, disabled))

    way, result = through_store(device_from_args(args), direct,
                                {"op": "set_disabled", "name": name, "disabled": disabled})
    if way == "store" and not result:
        raise StaffError(f"there is no staff account {name!r}: check with `python -m "
                         "provisioning list-staff`")
    console().print(f"staff account {name!r} {'disabled' if disabled else 'enabled'}")
    return 0
