"""The demo's operator error (one line at the command line, no traceback)."""

from __future__ import annotations

from foundation.errors import ConsentGateError


class DemoError(ConsentGateError):
    """The demo could not set itself up (ports, processes, photos) or a step went wrong."""
