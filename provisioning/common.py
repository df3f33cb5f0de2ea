"""Shared CLI plumbing of the provisioning commands: --dir/--config, logging, the console."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from foundation.logs import configure_logging
from provisioning.device import Device, open_device


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """Every command finds its device by --dir DIR or --config FILE."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dir", type=Path, help="device folder (made by `init`)")
    where.add_argument("--config", type=Path, help="the device's settings.toml")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"],
                        help="structlog level on stderr (default: warning)")


def start(args: argparse.Namespace) -> None:
    """Per-process logging for a provisioning command (the CLI is a composition root)."""
    configure_logging(getattr(args, "log_level", "warning"))


def device_from_args(args: argparse.Namespace) -> Device:
    return open_device(root=getattr(args, "dir", None), config=getattr(args, "config", None))


def console() -> Console:
    """Human output on stdout (rich; plain when not a terminal)."""
    tty = sys.stdout.isatty()
    return Console(file=sys.stdout, highlight=False, width=None if tty else 160)


def progress_bar(out: Console, *, disable: bool = False) -> Progress:
    """A transient rich progress bar on a terminal; off when stdout is a pipe or a file (the
    structlog events carry progress there), so piped output holds only the results."""
    return Progress(console=out, transient=True, disable=disable or not out.is_terminal)
