"""The collector's windows file gains a column for a count field added since it was made (issue
14's `wrong_flight`): old windows read 0 for it, new windows store it."""

from __future__ import annotations

import sqlite3

from central.windows_db import commit, load_state, open_db
from wire.telemetry import COUNT_FIELDS


def test_an_older_windows_file_gets_the_new_count_columns(tmp_path) -> None:
    path = tmp_path / "windows.db"
    old = [f for f in COUNT_FIELDS if f != "wrong_flight"]
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE devices (device TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE, "
        "last_seq INTEGER NOT NULL);"
        "CREATE TABLE windows (device TEXT NOT NULL, seq INTEGER NOT NULL, gate TEXT NOT NULL, "
        "window_start INTEGER NOT NULL, window_s INTEGER NOT NULL, k INTEGER NOT NULL, "
        "epsilon REAL, received_at REAL NOT NULL, "
        + ", ".join(f"{f} INTEGER" for f in old) + ", PRIMARY KEY (device, seq)) WITHOUT ROWID;")
    con.execute("INSERT INTO devices VALUES ('d1', 'key', 1)")
    con.execute(f"INSERT INTO windows (device, seq, gate, window_start, window_s, k, epsilon, "
                f"received_at, {', '.join(old)}) VALUES ('d1', 1, 'G', 0, 60, 5, NULL, 0, "
                + ", ".join("5" for _ in old) + ")")
    con.commit()
    con.close()
    db = open_db(path)
    try:
        cols = {row[1] for row in db.execute("PRAGMA table_info(windows)")}
        assert set(COUNT_FIELDS) <= cols
        state = load_state(db)
        assert state.totals["wrong_flight"] == 0 and state.totals["matched"] == 5
        assert state.suppressed == 0
        commit(db, [("win", ("d1", 0, 2, "G", 60, 60, 5, None, 1.0,
                             *(7 if f == "wrong_flight" else 0 for f in COUNT_FIELDS)))])
        assert load_state(db).totals["wrong_flight"] == 7
    finally:
        db.close()
