"""Thread-safe fixed-field counters per time window (raw counts, before disclosure control).

Windows are aligned to multiples of `window_s` on the wall clock (`Clock.now()`), so a window is
named only by its start; nothing finer than the window is kept. Every elapsed window is closed,
including empty ones, so central can tell a quiet gate from a silent one.

`restore()` takes back the raw counts of a window saved by an earlier process (see
`Uplink`): the current window's counts are merged in (sums; the peak is a maximum), any other
saved window is handed out by `close_due()` as a finished window. `version` grows with every
change, so a saver knows when there is something new to keep.
"""

from __future__ import annotations

import threading

import structlog

from edge.telemetry.errors import UnknownCountField
from foundation.clock import Clock
from wire.telemetry import COUNT_FIELDS, Window

log = structlog.get_logger(__name__)

_FIELD_SET = frozenset(COUNT_FIELDS)
PEAK_FIELD = "peak_in_view"

# After a long clock jump (or a long pause) at most this many empty windows are emitted.
MAX_EMPTY_CATCHUP = 2016


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNT_FIELDS, 0)


class WindowCounters:
    """Counts events into the current window; `close_due()` hands out windows that have ended."""

    def __init__(self, clock: Clock, window_s: int) -> None:
        if int(window_s) != window_s or window_s < 1:
            raise ValueError("window_s must be a whole number of seconds >= 1")
        self._clock = clock
        self._len = int(window_s)
        self._lock = threading.Lock()
        self._start = self._align(clock.now())
        self._counts = _zero()
        self._closed: list[Window] = []
        self._version = 0

    @property
    def window_s(self) -> int:
        return self._len

    @property
    def version(self) -> int:
        """Grows with every change of the counts (an add, a higher peak, a restore)."""
        return self._version

    def restore(self, start: int, length_s: int, counts: dict[str, int]) -> bool:
        """Take back saved raw counts of window `start`; True when merged into the open window,
        False when handed out as a finished window by the next `close_due()`."""
        clean = _zero()
        for name, value in counts.items():
            if name not in _FIELD_SET:
                raise UnknownCountField(f"saved window holds unknown field {name!r}")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"saved count {name} must be a whole number >= 0")
            clean[name] = value
        with self._lock:
            self._roll()
            self._version += 1
            if int(start) == self._start and int(length_s) == self._len:
                for name, value in clean.items():
                    if name == PEAK_FIELD:
                        self._counts[name] = max(self._counts[name], value)
                    else:
                        self._counts[name] += value
                return True
            self._closed.append(Window(int(start), int(length_s), clean))
            self._closed.sort(key=lambda w: w.start)
            return False

    def _align(self, t: float) -> int:
        return int(t // self._len) * self._len

    def _roll(self) -> None:
        """Close the open window (and any empty ones) if the clock has passed its end."""
        now_start = self._align(self._clock.now())
        if now_start <= self._start:  # same window, or the wall clock stepped back
            return
        self._closed.append(Window(self._start, self._len, self._counts))
        empties = (now_start - self._start) // self._len - 1
        if empties > MAX_EMPTY_CATCHUP:
            log.warning("telemetry_windows_skipped", skipped=empties - MAX_EMPTY_CATCHUP)
        first = max(self._start + self._len, now_start - MAX_EMPTY_CATCHUP * self._len)
        for start in range(first, now_start, self._len):
            self._closed.append(Window(start, self._len, _zero()))
        self._start = now_start
        self._counts = _zero()

    def add(self, field: str, n: int = 1) -> None:
        """Add `n` (>= 0) events to `field` in the current window."""
        if field not in _FIELD_SET:
            raise UnknownCountField(f"unknown count field {field!r}: use one of "
                                    f"{', '.join(COUNT_FIELDS)}")
        if field == PEAK_FIELD:
            raise UnknownCountField("peak_in_view is a maximum: call observe_peak(n) instead")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"count increment must be a whole number >= 0, got {n!r}")
        with self._lock:
            self._roll()
            self._counts[field] += n
            self._version += 1

    def observe_peak(self, people_in_view: int) -> None:
        """Raise the window's peak of people in view to `people_in_view` if it is higher."""
        if (not isinstance(people_in_view, int) or isinstance(people_in_view, bool)
                or people_in_view < 0):
            raise ValueError(f"people in view must be a whole number >= 0, got {people_in_view!r}")
        with self._lock:
            self._roll()
            if people_in_view > self._counts[PEAK_FIELD]:
                self._counts[PEAK_FIELD] = people_in_view
                self._version += 1

    def close_due(self) -> list[Window]:
        """Windows whose end has passed, oldest first (each is handed out once)."""
        with self._lock:
            self._roll()
            out, self._closed = self._closed, []
            return out

    def snapshot(self) -> Window:
        """The open window so far (for a status page; not closed)."""
        with self._lock:
            self._roll()
            return Window(self._start, self._len, dict(self._counts))
