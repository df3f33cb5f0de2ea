"""Which central endpoint the uplink connects to: an ordered list, failover and failback.

The device knows its collectors in order of preference (`telemetry.central_endpoints`, else
`telemetry.central_endpoint` alone). When the current one stays silent (the Paranoid Pirate
liveness of edge.telemetry.uplink), the uplink reconnects at once to the next; when it has tried
them all in a row, it backs off (`resend_initial_s` doubling up to `resend_max_s`) before going
round again. After `failback_s` on a later endpoint it reconnects to the first (if that one is
still silent, it fails over again after the liveness timeout). Every collector serves the same
database, so a switch loses and duplicates nothing: the stream restarts at the oldest
unacknowledged window and central's per-device rules decide it against what was committed.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

log = structlog.get_logger(__name__)


class Endpoints:
    def __init__(self, endpoints: Sequence[str], failback_s: float, backoff_initial_s: float,
                 backoff_max_s: float) -> None:
        if not endpoints:
            raise ValueError("no central endpoint")
        self._all = list(endpoints)
        self._index = 0
        self._failback_s = failback_s
        self._initial = self._backoff = backoff_initial_s
        self._max = backoff_max_s
        self._since = 0.0
        self._tried = 0  # endpoints that stayed silent in a row

    @property
    def current(self) -> str:
        return self._all[self._index]

    def connecting(self, now: float) -> str:
        """The endpoint to connect to now (its time on it counts from `now`)."""
        self._since = now
        return self.current

    def heard(self) -> None:
        """The current endpoint answered: the backoff starts over."""
        self._backoff = self._initial
        self._tried = 0

    def failback_due(self, now: float) -> bool:
        return self._index != 0 and now - self._since >= self._failback_s

    def leave(self, silent: bool) -> float:
        """Leave the current endpoint (it stayed `silent`, else failback): seconds to wait
        before connecting to the one chosen next."""
        before = self.current
        if not silent:
            self._index = 0
        else:
            self._index = (self._index + 1) % len(self._all)
            self._tried += 1
        if self.current != before:
            log.info("telemetry_endpoint_switch", endpoint=self.current, previous=before,
                     reason="silent" if silent else "failback")
        if not silent or self._tried < len(self._all):
            return 0.0
        self._tried = 0  # every endpoint stayed silent: back off before going round again
        delay, self._backoff = self._backoff, min(self._backoff * 2, self._max)
        return delay
