"""Logging scope of one CLI run (`python -m edge faces|thermal`), shared by both commands.

The commands configure structlog for their run only: warnings (engine events with --verbose)
on stderr, so stdout stays clean for --json; the previous configuration comes back afterwards,
so an in-process caller (tests, a Python shell, the demo) keeps its own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import structlog

from foundation.logs import configure_logging


@contextlib.contextmanager
def cli_logging(verbose: bool, json_logs: bool | None) -> Iterator[None]:
    saved = structlog.get_config()
    was_configured = structlog.is_configured()
    configure_logging("info" if verbose else "warning", json_logs, stream=sys.stderr)
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()
