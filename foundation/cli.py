"""The command-line dispatcher every process shares: `python -m PACKAGE COMMAND ...`.

Each command lives in its own room's module, which provides `add_arguments(parser)` and
`run(args) -> int`; only the chosen command's module is imported. Operator errors
(`ConsentGateError`) print one clear line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from foundation.errors import ConsentGateError


def dispatch(prog: str, commands: dict[str, tuple[str, str]], argv: Sequence[str] | None) -> int:
    """Parse `argv` for one of `commands`, run it, and turn operator errors into one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(prog=prog)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        top.parse_args(argv)  # prints help or the usage error and exits
        return 2
    name = argv[0]
    module = importlib.import_module(commands[name][0])
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=commands[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except ConsentGateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
