"""A part that runs on a daemon thread of its own until it is stopped.

A subclass writes `_run` (a loop that ends once `self._stop` is set, and sleeps with
`self._stop.wait(...)` so a stop wakes it) and, where it holds something to let go once the
thread has ended, `_after_stop`. `start()` returns the part, so `part = Part(...).start()`.
"""

from __future__ import annotations

import threading
from typing import Self


class Worker:
    """`start()` runs `_run` on a daemon thread named `thread_name`; `stop()` sets the stop
    event, waits up to `timeout` seconds for the thread, then calls `_after_stop`."""

    thread_name = "worker"
    stop_timeout_s = 5.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.stop_timeout_s if timeout is None else timeout)
        self._after_stop()

    def _run(self) -> None:
        raise NotImplementedError

    def _after_stop(self) -> None:
        """What to let go of once the thread has been asked to end (nothing, here)."""
