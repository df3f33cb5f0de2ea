"""The consent store's database: one SQLCipher file, its lock, connections, WAL and migrations.

One connection per thread (SQLCipher connections are not shared); `write()` is one
`BEGIN IMMEDIATE` transaction, so writers serialise across threads and processes. Opening checks
the key and the file before anything changes; the exclusive `<store>.lock` (edge.consent.lock)
is held for the database's lifetime. The repositories (consents and templates, audit, staff,
outbox) run their SQL through this object and own no connection of their own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

from edge.consent import opening
from edge.consent.errors import CorruptStoreError, StoreClosedError, StoreNotFoundError
from edge.consent.keys import read_key_file
from edge.consent.lock import StoreLock
from edge.consent.schema import LATEST, MIGRATIONS
from foundation.clock import Clock

log = structlog.get_logger(__name__)

_FAILED = ("stop the daemon, run `python -m provisioning verify`, restore from backup if it "
           "reports damage")


class StoreDatabase:
    """An open SQLCipher store file; safe to share between threads."""

    def __init__(self, path: Path, key: bytes, clock: Clock, *,
                 page_size: int = opening.PAGE_SIZE) -> None:
        self._path = Path(path)
        self._key = key
        self._clock = clock
        self._page_size = int(page_size)
        self._local = threading.local()
        self.lock = threading.RLock()
        self._conns: list[Any] = []
        self._key_gen = 0
        self._closed = False
        self._store_lock: StoreLock | None = None  # released on close when this object owns it

    @classmethod
    def open(cls, path: Path, key_file: Path, clock: Clock, *, create: bool = False,
             full_check: bool = True, lock: StoreLock | None = None) -> tuple[StoreDatabase, int]:
        """Open (or with `create=True`, create) the file; refuse bad files without changing them.

        Returns the database and the schema version found (0 for a new file). `full_check`
        authenticates every page at open. A caller that already holds the store's lock passes
        it as `lock` and keeps it after close(); otherwise the lock is taken here and raises
        StoreBusyError when another process holds it.
        """
        path = Path(path)
        key = read_key_file(key_file)
        creating = create and (not path.exists() or path.stat().st_size == 0)
        if not creating and not path.exists():
            raise StoreNotFoundError(f"no consent store at {path}: run `python -m provisioning "
                                     "init` (or check the store path in the settings)")
        if creating:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if lock is not None:
            if not lock.held or os.path.realpath(lock.store_path) != os.path.realpath(path):
                raise ValueError("the lock passed to ConsentStore.open is not held for this store")
            owned = None
        else:
            owned = lock = StoreLock.acquire(path)
        try:
            if creating:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # WAL/SHM inherit 0600
                os.chmod(path, 0o600)
                version, page_size = 0, opening.PAGE_SIZE
            else:
                version = opening.probe(path, key, full_check=full_check)
                page_size = opening.page_size_of(path, key)
        except BaseException:
            if owned is not None:
                owned.release()
            raise
        db = cls(path, key, clock, page_size=page_size)
        db._store_lock = owned
        return db, version

    @property
    def path(self) -> Path:
        return self._path

    @property
    def key(self) -> bytes:
        return self._key

    @property
    def connections(self) -> list[Any]:
        return list(self._conns)

    def close(self) -> None:
        """Checkpoint the WAL away and close every connection (idempotent)."""
        with self.lock:
            if self._closed:
                return
            try:
                self.checkpoint()
            except Exception:  # closing must not fail on a busy checkpoint
                log.warning("consent_store_checkpoint_skipped")
            self._closed = True
            for conn in self._conns:
                try:
                    conn.close()
                except Exception:
                    log.warning("consent_store_close_failed")
            self._conns.clear()
            if self._store_lock is not None:
                self._store_lock.release()
                self._store_lock = None

    def conn(self) -> Any:
        """This thread's connection (made on first use, remade after a rekey)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.gen == self._key_gen and not self._closed:
            return conn
        with self.lock:
            if self._closed:
                raise StoreClosedError("the consent store was closed: open it again")
            try:
                conn = opening.connect(self._path, self._key, page_size=self._page_size)
                opening.apply_write_pragmas(conn)
            except opening.DatabaseError as exc:
                raise CorruptStoreError(f"{self._path} could not be opened ({exc}): restore it "
                                        "from backup or re-provision") from None
            self._conns.append(conn)
            local.conn, local.gen = conn, self._key_gen
            return conn

    @contextmanager
    def write(self) -> Iterator[Any]:
        """One write transaction (BEGIN IMMEDIATE serialises writers across threads/processes)."""
        conn = self.conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except opening.DatabaseError as exc:
            raise CorruptStoreError(f"the consent store failed ({exc}): {_FAILED}") from None

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            rows: list[Any] = self.conn().execute(sql, params).fetchall()  # sqlcipher3 rows
            return rows
        except opening.DatabaseError as exc:
            raise CorruptStoreError(f"the consent store failed ({exc}): {_FAILED}") from None

    def checkpoint(self) -> None:
        """Move WAL frames into the file and truncate the WAL (removed bytes leave the WAL)."""
        self.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def scrub_wal(self, after: str) -> None:
        """Checkpoint after a deletion so the removed bytes leave the WAL too.

        The deletion itself is committed (and the gallery already told) before this runs, so a
        failed checkpoint (e.g. a reader holding the WAL) never leaves a deleted template
        matchable; the bytes leave the WAL at the next successful checkpoint (every purge and
        close tries again).
        """
        try:
            self.checkpoint()
        except opening.DatabaseError as exc:
            log.error("consent_store_checkpoint_deferred", after=after,
                      error=type(exc).__name__)

    def migrate(self, version: int, audit_in: Callable[[Any, int], None]) -> None:
        """Apply every migration after `version`, each in one transaction with its audit row."""
        for target in range(version + 1, LATEST + 1):
            with self.write() as conn:
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)",
                             (target, self._clock.now()))
                audit_in(conn, target)
            log.info("consent_store_migrated", version=target)

    def rekey(self, new_key_file: Path) -> None:
        """Re-encrypt the file under the key in `new_key_file` (PRAGMA rekey), then verify it.

        For provisioning's key rotation with the daemon stopped; other threads reconnect.
        """
        new_key = read_key_file(new_key_file)
        with self.lock:
            conn = self.conn()
            self.checkpoint()
            try:
                conn.execute(opening.key_statement(new_key, "rekey"))
            except opening.DatabaseError as exc:
                raise CorruptStoreError(f"re-keying failed ({exc}); the old key still opens the "
                                        "store: keep the old key file") from None
            self._key = new_key
            self._key_gen += 1
            for old in self._conns:
                old.close()
            self._conns.clear()
            opening.probe(self._path, new_key, full_check=True)
