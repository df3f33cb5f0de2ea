"""`python -m central COMMAND`: the central side's command table (not part of the edge box)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from foundation.cli import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("central.collect_cmd",
                "receive anonymised counts from devices over CurveZMQ into a database"),
    "rollup": ("central.rollup_cmd",
               "refresh the hourly and daily roll-ups of a PostgreSQL windows database"),
    "dashboard": ("central.dashboard_cmd",
                  "serve the fleet dashboard (log-in, charts, Prometheus /metrics)"),
    "add-user": ("central.add_user_cmd",
                 "create or update a fleet dashboard log-in (viewer or admin)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("python -m central", COMMANDS, argv)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
