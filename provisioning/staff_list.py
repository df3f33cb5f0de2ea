"""`list-staff`: the kiosk's staff accounts (name, role, disabled and, while the daemon runs,
whether log-ins of it now wait), from the store or through the running daemon."""

from __future__ import annotations

import argparse
from typing import Any

from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.staff import through_store


def _direct(store: Any) -> list[dict[str, Any]]:
    return [{"staff_id": s.name, "role": s.role, "disabled": s.disabled, "locked_out": False,
             "failures": 0, "wait_s": 0} for s in store.staff.all()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    way, result = through_store(device_from_args(args), _direct, {"op": "list_staff"})
    rows = result["staff"] if way == "daemon" else result
    out = console()
    if not rows:
        out.print("no staff accounts yet: add one with `python -m provisioning add-staff`")
        return 0
    for row in rows:
        state = "disabled" if row["disabled"] else "enabled"
        if row.get("locked_out"):
            state += f", log-ins wait {row['wait_s']} s (unlock-staff clears it)"
        out.print(f"{row['staff_id']:<24} {row['role']:<11} {state}", markup=False)
    if way == "store":
        out.print("(the daemon is not running: no log-in waits to show)")
    return 0
