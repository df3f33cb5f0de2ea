"""What central received during the demo: read from the collector's SQLite file (read-only).

`flush_telemetry` waits for the current telemetry window to close and reach the collector;
`collector_totals` sums the stored windows (peaks are maxima, not sums).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def collector_totals(db: Path) -> dict[str, int]:
    from wire.telemetry import COUNT_FIELDS

    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sums = ", ".join(f"COALESCE({'MAX' if f.startswith('peak') else 'SUM'}({f}), 0)"
                         for f in COUNT_FIELDS)
        row = con.execute(f"SELECT COUNT(*), {sums} FROM windows").fetchone()
    finally:
        con.close()
    return {"windows": row[0], **dict(zip(COUNT_FIELDS, row[1:], strict=True))}


def collector_has(db: Path, window_end: int) -> bool:
    """True once the collector stored a window reaching `window_end`."""
    with contextlib.suppress(sqlite3.Error):
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT MAX(window_start + window_s) FROM windows").fetchone()
            return row[0] is not None and row[0] >= window_end
        finally:
            con.close()
    return False


def flush_telemetry(window_s: int, uplink: Any, db: Path, say: Callable[[str], None],
                    timeout: float = 20.0) -> dict[str, int]:
    """Wait for the current window to close and reach the collector; its totals."""
    last_window_end = (int(time.time()) // window_s + 1) * window_s
    say("waiting for the last telemetry window to reach the collector")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if time.time() > last_window_end + 0.5:
            status = uplink.status() if uplink else {"pending": 0}
            if status.get("pending", 0) == 0 and collector_has(db, last_window_end):
                break
        time.sleep(0.2)
    return collector_totals(db)
