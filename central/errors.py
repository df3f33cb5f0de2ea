"""The collector's operator error (one line, no traceback, at the command line)."""

from __future__ import annotations

from foundation.errors import ConsentGateError


class CollectorError(ConsentGateError):
    """The collector cannot start (database, keys, endpoint)."""
