"""The daemon's operator error: it cannot start, or it stops so systemd restarts it."""

from __future__ import annotations

from foundation.errors import ConsentGateError


class DaemonError(ConsentGateError):
    """The daemon cannot start with these settings, or must stop (a part kept failing)."""
