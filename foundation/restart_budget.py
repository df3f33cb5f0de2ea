"""A restart budget: how often a supervised part may fail before it is given up on.

A part that fails unexpectedly (a worker thread's crash, the inference loop's error on a
frame) is restarted, but at most `max_restarts` times within `window_s`; one more failure in
that window spends the budget and the supervisor stops instead of restarting forever (the
daemon then exits non-zero so systemd's own restart policy takes over). Time comes from the
injected Clock.
"""

from __future__ import annotations

from collections import deque

from foundation.clock import Clock


class RestartBudget:
    def __init__(self, clock: Clock, max_restarts: int = 5, window_s: float = 60.0) -> None:
        if max_restarts < 0 or window_s <= 0:
            raise ValueError("max_restarts must be >= 0 and window_s > 0")
        self._clock = clock
        self.max_restarts = max_restarts
        self.window_s = window_s
        self._failures: deque[float] = deque()

    def spend(self) -> bool:
        """Record one failure; True while a restart is still allowed, False when spent."""
        now = self._clock.monotonic()
        self._failures.append(now)
        while self._failures and now - self._failures[0] > self.window_s:
            self._failures.popleft()
        return len(self._failures) <= self.max_restarts

    @property
    def recent(self) -> int:
        """Failures within the current window."""
        now = self._clock.monotonic()
        return sum(1 for t in self._failures if now - t <= self.window_s)
