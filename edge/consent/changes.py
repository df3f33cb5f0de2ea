"""The template change log: which template ids were added and removed, for the gallery.

Writers record each committed change; the gallery asks for the changes since the generation it
last saw and updates its matrix incrementally (or reloads when the log no longer reaches back).
Listeners run in the writer's thread right after the commit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

CHANGE_LOG_LIMIT = 4096


class ChangeLog:
    """Generations of template changes made through one store object."""

    def __init__(self, limit: int = CHANGE_LOG_LIMIT) -> None:
        self._lock = threading.Lock()
        self._limit = int(limit)
        self._listeners: list[Callable[[], None]] = []
        self._generation = 0
        self._changes: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = []

    def add_listener(self, callback: Callable[[], None]) -> None:
        """`callback()` runs (in the writer's thread) after any template change commits."""
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    @property
    def generation(self) -> int:
        """Counter of template changes recorded here."""
        return self._generation

    def since(self, generation: int) -> tuple[int, tuple[int, ...], tuple[int, ...]] | None:
        """(current generation, added ids, removed ids) since `generation`, or None when the
        log no longer reaches back that far (reload everything)."""
        with self._lock:
            if generation == self._generation:
                return self._generation, (), ()
            if not self._changes or self._changes[0][0] > generation + 1:
                return None
            added: list[int] = []
            removed: set[int] = set()
            for gen, add, rem in self._changes:
                if gen > generation:
                    added += add
                    removed.update(rem)
            return self._generation, tuple(i for i in added if i not in removed), \
                tuple(sorted(removed))

    def record(self, added: tuple[int, ...], removed: tuple[int, ...]) -> None:
        """Record a committed change and tell every listener."""
        with self._lock:
            self._generation += 1
            self._changes.append((self._generation, added, removed))
            del self._changes[:-self._limit]
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback()
            except Exception:
                log.exception("consent_listener_failed")
