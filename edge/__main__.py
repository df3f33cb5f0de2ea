"""`python -m edge COMMAND`: the daemon's command table (each command lives in its room)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from foundation.cli import dispatch

# command -> (module, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "faces": ("edge.evaluation.faces_cli", "detect, compare, evaluate and search faces"),
    "thermal": ("edge.screening.cli", "measure, synthesise and evaluate thermal screening"),
    "pad": ("edge.screening.pad_cli",
            "measure, synthesise and evaluate presentation-attack detection (thermal)"),
    "run": ("edge.daemon", "run the gate daemon from a settings file"),
    "demo": ("demo.day", "run the whole appliance on embedded defaults and a scripted day"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("python -m edge", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
