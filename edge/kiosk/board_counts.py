"""The lane board's "Today" counts in the consent store (table `board_counts`, migration 6), so
a daemon restart keeps them. Anonymous counts of the local day only; other days' rows are
deleted at each save, and nothing here ever leaves the box."""

from __future__ import annotations

import re
from typing import Any

from edge.consent.errors import ConsentStoreError

_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_FIELDS = 64
MAX_COUNT = 10**9


class StoreCounts:
    """Load and save one day's counts through the store's database (edge.consent.database)."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def load(self, day: str) -> dict[str, int]:
        """Today's saved counts; malformed rows are skipped, a failing store gives none."""
        try:
            rows = self._db.read("SELECT field, count FROM board_counts WHERE day = ? "
                                 "LIMIT ?", (day, MAX_FIELDS))
        except ConsentStoreError:
            return {}
        return {str(f): int(n) for f, n in rows
                if isinstance(f, str) and _FIELD.match(f) and isinstance(n, int)
                and 0 <= n <= MAX_COUNT}

    def save(self, day: str, counts: dict[str, int]) -> None:
        rows = [(day, f, min(int(n), MAX_COUNT)) for f, n in list(counts.items())[:MAX_FIELDS]
                if _FIELD.match(f) and int(n) >= 0]
        with self._db.write() as conn:
            conn.execute("DELETE FROM board_counts WHERE day != ?", (day,))
            conn.executemany("INSERT INTO board_counts (day, field, count) VALUES (?, ?, ?) "
                             "ON CONFLICT (day, field) DO UPDATE SET count = excluded.count",
                             rows)
