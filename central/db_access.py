"""One small interface over the two central databases, for the dashboard and its users.

`open_central(db)` opens what `--db` names (central.store.is_postgres): a PostgreSQL URI (the
collectors' database, migrated by central.pg_schema) or a SQLite file (the embedded collector's,
created by central.windows_db). `Central.rows(sql, params)` runs one statement written with `?`
placeholders (turned into `%s` for psycopg), so the dashboard's queries are written once. A
statement for PostgreSQL must not hold a literal `%` (psycopg would read it as a placeholder).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from central.errors import CollectorError
from central.store import is_postgres


class Central:
    """An open central database: `backend` is "postgres" or "sqlite"."""

    def __init__(self, conn: Any, backend: str) -> None:
        self.conn, self.backend = conn, backend

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "postgres":
            return list(self.conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall())
        return list(self.conn.execute(sql, tuple(params)).fetchall())

    def write(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement in its own transaction (both connections run in autocommit)."""
        if self.backend == "postgres":
            self.conn.execute(sql.replace("?", "%s"), tuple(params))
        else:
            self.conn.execute(sql, tuple(params))

    def close(self) -> None:
        self.conn.close()


def _sqlite(path: Path, prepare: bool) -> Central:
    if prepare:
        from central.windows_db import open_db  # creates or upgrades the file's tables

        return Central(open_db(path), "sqlite")
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    except sqlite3.Error as exc:
        raise CollectorError(f"cannot open database {path} ({exc}): give the collector's "
                             "SQLite file") from None
    return Central(conn, "sqlite")


def _postgres(dsn: str, prepare: bool) -> Central:
    from central.pg_schema import migrate
    from central.pg_store import connect

    conn = connect(dsn)
    if prepare:
        try:
            migrate(conn)
        except Exception:
            conn.close()
            raise
    return Central(conn, "postgres")


def open_central(db: str | Path, *, prepare: bool = False) -> Central:
    """The database `--db` names; with `prepare`, its tables created or migrated first (once, at
    a command's start). CollectorError saying what to give when it fails."""
    if is_postgres(db):
        return _postgres(str(db), prepare)
    path = Path(db)
    if not path.parent.is_dir():
        raise CollectorError(f"--db {path}: its folder does not exist; give a SQLite file in an "
                             "existing folder or a postgresql:// URI")
    return _sqlite(path, prepare)


def check_sqlite_file(db: str | Path) -> None:
    """For readers: a SQLite `--db` must exist already (a typo must not create an empty one)."""
    if not is_postgres(db) and not Path(db).is_file():
        raise CollectorError(f"--db {db}: no such SQLite file; give the collector's database "
                             "(python -m central collect --db FILE makes it)")


@contextlib.contextmanager
def central(db: str | Path, *, prepare: bool = False) -> Iterator[Central]:
    handle = open_central(db, prepare=prepare)
    try:
        yield handle
    finally:
        handle.close()


__all__ = ["Central", "central", "check_sqlite_file", "open_central"]
