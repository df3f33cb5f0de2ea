"""The encrypted consent store: consents, templates, retention, audit, staff and the outbox.

One SQLCipher file keyed with a raw 256-bit key; one connection per thread. Every operation is
one transaction together with its audit row, so a crash leaves whole operations only. Boarding
references and withdrawal codes are stored only as HMACs with the per-device secret. Deletions
(withdrawal, boarding, purge) use `secure_delete` and truncate the WAL so removed template bytes
leave the file. Nothing here logs or returns a reference, a code or an embedding.
One process at a time: an open store holds the exclusive `<store>.lock` (edge.consent.lock).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import structlog

from edge.clock import Clock
from edge.consent import opening, retention
from edge.consent.audit import GENESIS, row_hash
from edge.consent.errors import (
    AuditChainError,
    ConsentRequiredError,
    CorruptStoreError,
    InvalidConsentError,
    InvalidEmbeddingError,
    InvalidStaffError,
    StoreClosedError,
    StoreNotFoundError,
)
from edge.consent.keys import read_key_file
from edge.consent.lock import StoreLock
from edge.consent.records import Consent, Enrolment, Staff, TemplateRow
from edge.consent.schema import LATEST, MIGRATIONS

if TYPE_CHECKING:
    from edge.settings import Settings

log = structlog.get_logger("edge.consent.store")

MAX_TEMPLATES_PER_CONSENT = 3
MAX_ENROL_IMAGES = 10
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_REF_RE = re.compile(r"[A-Z0-9]{1,64}")
_CHANGE_LOG_LIMIT = 4096
# The purge empties and refills a table instead of deleting row by row once this many of its
# rows, and this share of it, have expired (a whole-table clear frees pages without per-row
# b-tree work; each survivor costs about two deleted rows to copy out and back: break-even
# measured near 70% expired).
REBUILD_MIN_ROWS = 1024
REBUILD_FRACTION = 0.75


def _normalise_reference(reference: str) -> str:
    ref = re.sub(r"\s+", "", str(reference)).upper()
    if not _REF_RE.fullmatch(ref):
        raise InvalidConsentError("the boarding reference must be 1-64 letters or digits: "
                                  "re-scan the boarding pass")
    return ref


def _normalise_code(code: str) -> str:
    return re.sub(r"[\s-]+", "", str(code)).upper()


def _new_withdrawal_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _text(value: str, what: str, limit: int = 128) -> str:
    value = str(value).strip()
    if not value or len(value) > limit:
        raise InvalidConsentError(f"{what} must be 1-{limit} characters")
    return value


class ConsentStore:
    """Encrypted store of consents and templates; safe to share between threads."""

    def __init__(self, path: Path, key: bytes, secret: bytes, clock: Clock, *,
                 max_retention_s: int, delete_on_boarding: bool,
                 page_size: int = opening.PAGE_SIZE) -> None:
        self._path = Path(path)
        self._key = key
        self._page_size = int(page_size)
        self._ref_key = hmac.new(secret, b"consentgate/reference/v1", hashlib.sha256).digest()
        self._audit_key = hmac.new(secret, b"consentgate/audit/v1", hashlib.sha256).digest()
        self._clock = clock
        self.max_retention_s = int(max_retention_s)
        self.delete_on_boarding = bool(delete_on_boarding)
        self._local = threading.local()
        self._lock = threading.RLock()
        self._conns: list[Any] = []
        self._key_gen = 0
        self._closed = False
        self._listeners: list[Callable[[], None]] = []
        self._generation = 0
        self._changes: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = []
        self._store_lock: StoreLock | None = None  # released on close when this store owns it

    # ------------------------------------------------------------------ opening and closing
    @classmethod
    def open(cls, path: Path, key_file: Path, hmac_secret_file: Path, clock: Clock, *,
             max_retention_s: int = 86400, delete_on_boarding: bool = True,
             create: bool = False, full_check: bool = True,
             lock: StoreLock | None = None) -> ConsentStore:
        """Open (or with `create=True`, create) the store; refuse bad files without changing them.

        `full_check` authenticates every page at open (cost grows with the store's size).
        The store takes the exclusive `<store>.lock` (edge.consent.lock) for its lifetime and
        raises StoreBusyError when another process holds it; a caller that already holds the
        lock (a provisioning tool spanning several opens) passes it as `lock`, and then keeps
        it after close().
        """
        path = Path(path)
        key = read_key_file(key_file)
        secret = read_key_file(hmac_secret_file)
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
        store = cls(path, key, secret, clock, max_retention_s=max_retention_s,
                    delete_on_boarding=delete_on_boarding, page_size=page_size)
        store._store_lock = owned
        try:
            store._migrate(version)
        except BaseException:
            store.close()
            raise
        log.info("consent_store_opened", schema_version=LATEST, **store.stats())
        return store

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock, create: bool = False) -> ConsentStore:
        return cls.open(settings.store_path, settings.store_key_file, settings.hmac_secret_file,
                        clock, max_retention_s=settings.consent.max_retention_s,
                        delete_on_boarding=settings.consent.delete_on_boarding, create=create)

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        """Checkpoint the WAL away and close every connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._checkpoint()
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

    def __enter__(self) -> ConsentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> Any:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.gen == self._key_gen and not self._closed:
            return conn
        with self._lock:
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
    def _write(self) -> Iterator[Any]:
        """One write transaction (BEGIN IMMEDIATE serialises writers across threads/processes)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except opening.DatabaseError as exc:
            raise CorruptStoreError(f"the consent store failed ({exc}): stop the daemon, run "
                                    "`python -m provisioning verify`, restore from backup "
                                    "if it reports damage") from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except opening.DatabaseError as exc:
            raise CorruptStoreError(f"the consent store failed ({exc}): stop the daemon, run "
                                    "`python -m provisioning verify`, restore from backup "
                                    "if it reports damage") from None

    def _checkpoint(self) -> None:
        """Move WAL frames into the file and truncate the WAL (removed bytes leave the WAL)."""
        self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _scrub_wal(self, after: str) -> None:
        """Checkpoint after a deletion so the removed bytes leave the WAL too.

        The deletion itself is committed (and the gallery already told) before this runs, so a
        failed checkpoint (e.g. a reader holding the WAL) never leaves a deleted template
        matchable; the bytes leave the WAL at the next successful checkpoint (every purge and
        close tries again).
        """
        try:
            self._checkpoint()
        except opening.DatabaseError as exc:
            log.error("consent_store_checkpoint_deferred", after=after,
                      error=type(exc).__name__)

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, LATEST + 1):
            with self._write() as conn:
                for statement in MIGRATIONS[target - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)",
                             (target, self._clock.now()))
                self._audit_in(conn, "schema_migrated", "system", None, f"version={target}")
            log.info("consent_store_migrated", version=target)

    # ------------------------------------------------------------------------------ hashing
    def _ref_hash(self, reference: str) -> bytes:
        return hmac.new(self._ref_key, b"ref\x00" + _normalise_reference(reference).encode(),
                        hashlib.sha256).digest()

    def _code_hash(self, code: str) -> bytes:
        return hmac.new(self._ref_key, b"code\x00" + _normalise_code(code).encode(),
                        hashlib.sha256).digest()

    # -------------------------------------------------------------------------------- audit
    def _audit_in(self, conn: Any, event: str, actor: str, subject: str | None,
                  reason: str | None) -> None:
        row = conn.execute("SELECT seq, row_hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        prev = bytes(row[1]) if row else GENESIS
        seq = self._next_seq(conn, "audit")
        at = self._clock.now()
        digest = row_hash(self._audit_key, prev, seq, at, event, actor, subject, reason)
        conn.execute("INSERT INTO audit (seq, at, event, actor, subject, reason, prev_hash, "
                     "row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, at, event, actor, subject, reason, prev, digest))

    @staticmethod
    def _next_seq(conn: Any, table: str) -> int:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        return (int(row[0]) if row else 0) + 1

    def audit(self, event: str, actor: str, subject: str | None = None,
              reason: str | None = None) -> None:
        """Append an audit row (ids and reasons only: never names, references or images)."""
        event = _text(event, "audit event", 64)
        actor = _text(actor, "audit actor", 64)
        with self._write() as conn:
            self._audit_in(conn, event, actor, subject, reason)

    def verify_audit(self) -> int:
        """Recompute the chain; return the rows checked or raise AuditChainError at the first
        row that was edited, removed or reordered."""
        prev, expected_seq, checked = GENESIS, None, 0
        for seq, at, event, actor, subject, reason, prev_hash, digest in self._read(
                "SELECT seq, at, event, actor, subject, reason, prev_hash, row_hash FROM audit "
                "ORDER BY seq"):
            if expected_seq is not None and seq != expected_seq:
                raise AuditChainError(f"audit rows before #{seq} are missing: the log was cut; "
                                      "preserve the store for investigation")
            if bytes(prev_hash) != prev or not hmac.compare_digest(
                    bytes(digest),
                    row_hash(self._audit_key, prev, seq, at, event, actor, subject, reason)):
                raise AuditChainError(f"audit row #{seq} does not match the chain: it was edited "
                                      "or its predecessor removed; preserve the store for "
                                      "investigation")
            prev, expected_seq, checked = bytes(digest), seq + 1, checked + 1
        return checked

    # ------------------------------------------------------------------------------ consent
    def grant_consent(self, reference: str, purpose: str, scope: str, expires_at: float,
                      actor: str) -> Consent:
        """Record a consent; returns its id and a one-time withdrawal code for the traveller."""
        ref_hash = self._ref_hash(reference)
        purpose = _text(purpose, "purpose")
        scope = _text(scope, "scope")
        actor = _text(actor, "actor", 64)
        now = self._clock.now()
        effective = retention.consent_expiry(now, float(expires_at), self.max_retention_s)
        consent_id = uuid.uuid4().hex
        code = _new_withdrawal_code()
        with self._write() as conn:
            conn.execute("INSERT INTO consents (consent_id, ref_hash, code_hash, purpose, scope, "
                         "granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (consent_id, ref_hash, self._code_hash(code), purpose, scope, now,
                          effective))
            self._audit_in(conn, "consent_granted", actor, consent_id, None)
        log.info("consent_granted", consent_id=consent_id)
        return Consent(consent_id=consent_id, withdrawal_code=code, granted_at=now,
                       expires_at=effective)

    def enrol(self, consent_id: str, embeddings: Sequence[np.ndarray], model_name: str,
              actor: str, *, strategy: Literal["mean", "each"] = "mean") -> Enrolment:
        """Store templates under a live consent, replacing earlier ones, in one transaction.

        `strategy="mean"`: one template, the re-normalised mean of up to 10 embeddings;
        `"each"`: one template per embedding (at most 3).
        """
        vectors = self._templates_from(embeddings, strategy)
        model_name = _text(model_name, "model name", 64)
        actor = _text(actor, "actor", 64)
        now = self._clock.now()
        with self._write() as conn:
            row = conn.execute("SELECT expires_at, withdrawn_at, code_hash FROM consents WHERE "
                               "consent_id = ?", (str(consent_id),)).fetchone()
            if row is None or row[1] is not None or row[2] is None \
                    or not retention.is_live(row[0], now):
                raise ConsentRequiredError("no live consent for this enrolment (unknown, "
                                           "expired, withdrawn or already boarded): record the "
                                           "traveller's consent first")
            dim_row = conn.execute("SELECT dim FROM templates WHERE consent_id != ? LIMIT 1",
                                   (consent_id,)).fetchone()
            if dim_row is not None and dim_row[0] != vectors.shape[1]:
                raise InvalidEmbeddingError(f"embeddings have {vectors.shape[1]} values but the "
                                            f"gallery holds {dim_row[0]}: use the configured "
                                            "embedder")
            replaced = [r[0] for r in conn.execute(
                "SELECT template_id FROM templates WHERE consent_id = ?", (consent_id,))]
            conn.execute("DELETE FROM templates WHERE consent_id = ?", (consent_id,))
            expires = retention.template_expiry(now, row[0], self.max_retention_s)
            ids = []
            for vec in vectors:
                cur = conn.execute("INSERT INTO templates (consent_id, model_name, dim, "
                                   "created_at, expires_at, embedding) VALUES (?, ?, ?, ?, ?, ?)",
                                   (consent_id, model_name, int(vec.shape[0]), now, expires,
                                    vec.astype("<f4").tobytes()))
                ids.append(int(cur.lastrowid))
            self._audit_in(conn, "enrolled", actor, consent_id,
                           f"templates={len(ids)} replaced={len(replaced)}")
        self._changed(tuple(ids), tuple(replaced))
        log.info("enrolled", consent_id=consent_id, templates=len(ids), replaced=len(replaced))
        return Enrolment(consent_id=consent_id, template_ids=tuple(ids), expires_at=expires)

    @staticmethod
    def _templates_from(embeddings: Sequence[np.ndarray], strategy: str) -> np.ndarray:
        if strategy not in ("mean", "each"):
            raise InvalidEmbeddingError("strategy must be 'mean' or 'each'")
        items = list(embeddings)
        limit = MAX_ENROL_IMAGES if strategy == "mean" else MAX_TEMPLATES_PER_CONSENT
        if not 1 <= len(items) <= limit:
            raise InvalidEmbeddingError(f"enrolment takes 1-{limit} embeddings for strategy "
                                        f"'{strategy}', got {len(items)}: capture again")
        rows = []
        for item in items:
            vec = np.asarray(item, dtype=np.float64)
            if vec.ndim != 1 or not 2 <= vec.shape[0] <= 4096:
                raise InvalidEmbeddingError("each embedding must be a 1-D vector of 2-4096 "
                                            "values: pass the embedder's output")
            norm = float(np.linalg.norm(vec)) if np.all(np.isfinite(vec)) else float("nan")
            if not np.isfinite(norm) or norm < 1e-6:
                raise InvalidEmbeddingError("an embedding is not finite or has zero length: "
                                            "capture again")
            rows.append(vec / norm)
        if len({r.shape[0] for r in rows}) != 1:
            raise InvalidEmbeddingError("embeddings differ in length: use one embedder")
        matrix = np.stack(rows)
        if strategy == "mean":
            mean = matrix.mean(axis=0)
            norm = float(np.linalg.norm(mean))
            if norm < 1e-3:
                raise InvalidEmbeddingError("the enrolment images disagree completely: capture "
                                            "again")
            matrix = (mean / norm)[None, :]
        return matrix.astype(np.float32)

    def withdraw(self, *, reference: str | None = None, withdrawal_code: str | None = None,
                 consent_id: str | None = None, actor: str, reason: str = "withdrawn") -> bool:
        """Withdraw consent(s) selected by exactly one of reference, code or id: templates are
        deleted at once and the consent is left as an unlinkable tombstone until its expiry.
        Returns whether anything was withdrawn."""
        chosen = [x is not None for x in (reference, withdrawal_code, consent_id)]
        if sum(chosen) != 1:
            raise InvalidConsentError("withdraw needs exactly one of reference, withdrawal code "
                                      "or consent id")
        actor = _text(actor, "actor", 64)
        reason = _text(reason, "reason", 64)
        if reference is not None:
            where, param = "ref_hash = ?", self._ref_hash(reference)
        elif withdrawal_code is not None:
            where, param = "code_hash = ?", self._code_hash(withdrawal_code)
        else:
            where, param = "consent_id = ?", str(consent_id)
        return self._retire(f"{where} AND withdrawn_at IS NULL", (param,), "withdrawn", actor,
                            reason, delete=True)

    def mark_boarded(self, consent_id: str, actor: str = "daemon") -> None:
        """Record a boarding; by default its templates are deleted (idempotent)."""
        actor = _text(actor, "actor", 64)
        self._retire("consent_id = ? AND withdrawn_at IS NULL AND boarded_at IS NULL",
                     (str(consent_id),), "boarded", actor, None,
                     delete=self.delete_on_boarding)

    def _retire(self, where: str, params: tuple[Any, ...], event: str, actor: str,
                reason: str | None, *, delete: bool) -> bool:
        now = self._clock.now()
        stamp = "withdrawn_at" if event == "withdrawn" else "boarded_at"
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(f"SELECT consent_id FROM consents WHERE {where}",
                                              params)]
            removed: list[int] = []
            for cid in ids:
                if delete:
                    removed += [r[0] for r in conn.execute(
                        "SELECT template_id FROM templates WHERE consent_id = ?", (cid,))]
                    conn.execute("DELETE FROM templates WHERE consent_id = ?", (cid,))
                    conn.execute(f"UPDATE consents SET {stamp} = ?, ref_hash = NULL, "
                                 "code_hash = NULL WHERE consent_id = ?", (now, cid))
                else:
                    conn.execute(f"UPDATE consents SET {stamp} = ? WHERE consent_id = ?",
                                 (now, cid))
                self._audit_in(conn, event, actor, cid, reason)
        if removed:
            self._changed((), tuple(removed))  # the gallery forgets them before anything else
            self._scrub_wal("withdrawal" if event == "withdrawn" else "boarding")
        if ids:
            log.info(event, consents=len(ids), templates_deleted=len(removed))
        return bool(ids)

    def purge(self) -> int:
        """Delete expired templates and expired consent records for real; returns rows deleted.

        A table most of whose rows expired (at least `REBUILD_MIN_ROWS` and `REBUILD_FRACTION`
        of it) is emptied and refilled with its survivors instead of being deleted from row
        by row: see `_refill`. Template ids and the id sequence are kept either way.
        """
        now = self._clock.now()
        conn = self._conn()
        # Children (templates) are deleted explicitly before their parents (consents), so the
        # purge needs no cascade; with foreign keys off, a whole-table DELETE is SQLite's
        # truncate (page-level clear) and needs no statement journal. The pragma only takes
        # effect outside a transaction; it is restored whatever happens.
        conn.execute("PRAGMA foreign_keys = OFF")
        try:
            with self._write() as conn:
                removed = [r[0] for r in conn.execute(
                    "SELECT template_id FROM templates WHERE expires_at <= ?", (now,))]
                removed += [r[0] for r in conn.execute(
                    "SELECT t.template_id FROM consents c JOIN templates t ON t.consent_id = "
                    "c.consent_id WHERE c.expires_at <= ? AND t.expires_at > ?", (now, now))]
                total = int(conn.execute("SELECT count(*) FROM templates").fetchone()[0])
                if self._worth_refilling(len(removed), total):
                    # CROSS JOIN keeps the expiry index driving (the survivors only); a join
                    # ordered by id would scan, and so decrypt, the whole table first
                    self._refill(conn, "templates", "SELECT t.* FROM templates t CROSS JOIN "
                                 "consents c ON c.consent_id = t.consent_id WHERE t.expires_at "
                                 "> ? AND c.expires_at > ?", (now, now))
                elif removed:
                    # Two range deletes instead of one OR: the expiry index drives the first
                    # (a template never outlives its consent, so it takes them all in
                    # practice), the second catches any template of an expired consent.
                    conn.execute("DELETE FROM templates WHERE expires_at <= ?", (now,))
                    conn.execute("DELETE FROM templates WHERE consent_id IN (SELECT consent_id "
                                 "FROM consents WHERE expires_at <= ?)", (now,))
                if conn.execute("SELECT 1 FROM consents c JOIN templates t ON t.consent_id = "
                                "c.consent_id WHERE c.expires_at <= ? LIMIT 1", (now,)).fetchone():
                    raise CorruptStoreError("the purge would leave templates without a consent "
                                            "and was rolled back: run `python -m provisioning "
                                            "verify`")
                consents = int(conn.execute("SELECT count(*) FROM consents WHERE expires_at "
                                            "<= ?", (now,)).fetchone()[0])
                if self._worth_refilling(consents, int(conn.execute(
                        "SELECT count(*) FROM consents").fetchone()[0])):
                    self._refill(conn, "consents", "SELECT * FROM consents WHERE expires_at > ?",
                                 (now,))
                elif consents:
                    conn.execute("DELETE FROM consents WHERE expires_at <= ?", (now,))
                if removed or consents:
                    self._audit_in(conn, "purged", "system", None,
                                   f"templates={len(removed)} consents={consents}")
        finally:
            conn.execute("PRAGMA foreign_keys = ON")
        if removed:
            self._changed((), tuple(removed))  # the gallery forgets them before anything else
        if removed or consents:
            self._scrub_wal("purge")
            log.info("purged", templates=len(removed), consents=consents)
        return len(removed) + consents

    @staticmethod
    def _worth_refilling(expired: int, total: int) -> bool:
        return expired >= REBUILD_MIN_ROWS and expired >= REBUILD_FRACTION * total

    @staticmethod
    def _refill(conn: Any, table: str, survivors: str, params: tuple[Any, ...]) -> None:
        """Inside the caller's transaction: keep the rows `survivors` selects in an in-memory
        temp table (`temp_store=MEMORY`; SQLCipher wipes it when freed), empty `table` with a
        whole-table DELETE (SQLite clears it page by page; `secure_delete` zeroes every freed
        page) and copy the survivors back. The table, its indexes and its AUTOINCREMENT
        sequence stay as they were (ids are never reused)."""
        conn.execute("DROP TABLE IF EXISTS temp.purge_survivors")
        conn.execute(f"CREATE TEMP TABLE purge_survivors AS {survivors}", params)
        conn.execute(f"DELETE FROM main.{table}")
        conn.execute(f"INSERT INTO main.{table} SELECT * FROM temp.purge_survivors")
        conn.execute("DROP TABLE temp.purge_survivors")

    # --------------------------------------------------------------------------- rekeying
    def rekey(self, new_key_file: Path) -> None:
        """Re-encrypt the store under the key in `new_key_file` (PRAGMA rekey), then verify it.

        For provisioning's key rotation with the daemon stopped; other threads reconnect.
        """
        new_key = read_key_file(new_key_file)
        with self._lock:
            conn = self._conn()
            self._checkpoint()
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
        self.audit("rekeyed", "provisioning")
        log.info("consent_store_rekeyed")

    # ------------------------------------------------------------------------------ queries
    def stats(self) -> dict[str, int]:
        now = self._clock.now()
        one = lambda sql, *p: int(self._read(sql, p)[0][0])  # noqa: E731
        return {
            "active_consents": one("SELECT count(*) FROM consents WHERE expires_at > ? AND "
                                   "withdrawn_at IS NULL AND code_hash IS NOT NULL", now),
            "templates": one("SELECT count(*) FROM templates WHERE expires_at > ?", now),
            "expiring_1h": one("SELECT count(*) FROM templates WHERE expires_at > ? AND "
                               "expires_at <= ?", now, now + 3600),
            "expired_unpurged": one("SELECT count(*) FROM templates WHERE expires_at <= ?", now),
            "outbox_pending": one("SELECT count(*) FROM outbox"),
            "staff_accounts": one("SELECT count(*) FROM staff"),
            "audit_rows": one("SELECT count(*) FROM audit"),
        }

    def consent_summary(self) -> list[dict[str, Any]]:
        """Consents not yet purged: id, purpose, scope, times, template count and status."""
        now = self._clock.now()
        out = []
        for cid, purpose, scope, granted, expires, boarded, withdrawn, n in self._read(
                "SELECT c.consent_id, c.purpose, c.scope, c.granted_at, c.expires_at, "
                "c.boarded_at, c.withdrawn_at, (SELECT count(*) FROM templates t WHERE "
                "t.consent_id = c.consent_id AND t.expires_at > ?) FROM consents c "
                "ORDER BY c.granted_at, c.consent_id", (now,)):
            status = ("withdrawn" if withdrawn is not None else
                      "expired" if not retention.is_live(expires, now) else
                      "boarded" if boarded is not None else "active")
            out.append({"consent_id": cid, "purpose": purpose, "scope": scope,
                        "granted_at": granted, "expires_at": expires, "templates": int(n),
                        "status": status})
        return out

    def active_templates(self) -> list[TemplateRow]:
        """Unexpired templates of live (unwithdrawn) consents, vectors as float32."""
        return self._template_rows("", ())

    def templates_by_ids(self, template_ids: Sequence[int]) -> list[TemplateRow]:
        """Those of `template_ids` that are still live (for incremental gallery updates)."""
        rows: list[TemplateRow] = []
        ids = [int(i) for i in template_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows += self._template_rows(
                f" AND t.template_id IN ({','.join('?' * len(chunk))})", tuple(chunk))
        return rows

    def _template_rows(self, extra: str, params: tuple[Any, ...]) -> list[TemplateRow]:
        now = self._clock.now()
        return [TemplateRow(template_id=int(tid), consent_id=cid, expires_at=float(exp),
                            vector=np.frombuffer(blob, dtype="<f4").astype(np.float32))
                for tid, cid, exp, blob in self._read(
                    "SELECT t.template_id, t.consent_id, t.expires_at, t.embedding FROM "
                    "templates t JOIN consents c ON c.consent_id = t.consent_id WHERE "
                    "t.expires_at > ? AND c.expires_at > ? AND c.withdrawn_at IS NULL" + extra +
                    " ORDER BY t.template_id", (now, now, *params))]

    # ----------------------------------------------------------------------------- listeners
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
        """Counter of template changes made through this object."""
        return self._generation

    def changes_since(self, generation: int) -> tuple[int, tuple[int, ...], tuple[int, ...]] | None:
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

    def _changed(self, added: tuple[int, ...], removed: tuple[int, ...]) -> None:
        with self._lock:
            self._generation += 1
            self._changes.append((self._generation, added, removed))
            del self._changes[:-_CHANGE_LOG_LIMIT]
            listeners = list(self._listeners)
        for callback in listeners:
            try:
                callback()
            except Exception:
                log.exception("consent_listener_failed")

    # --------------------------------------------------------------------------------- staff
    def upsert_staff(self, name: str, role: str, password_hash: str) -> None:
        """Create or update a staff account (the hash comes from edge.kiosk.passwords)."""
        try:
            name = _text(name, "staff name", 64)
            role = _text(role, "staff role", 32)
            password_hash = _text(password_hash, "password hash", 512)
        except InvalidConsentError as exc:
            raise InvalidStaffError(str(exc)) from None
        with self._write() as conn:
            conn.execute("INSERT INTO staff (name, role, password_hash, disabled, updated_at) "
                         "VALUES (?, ?, ?, 0, ?) ON CONFLICT(name) DO UPDATE SET role = "
                         "excluded.role, password_hash = excluded.password_hash, updated_at = "
                         "excluded.updated_at", (name, role, password_hash, self._clock.now()))
            self._audit_in(conn, "staff_upserted", "provisioning", name, role)

    def set_staff_disabled(self, name: str, disabled: bool, actor: str = "provisioning") -> bool:
        """Disable or re-enable an account; returns whether it exists."""
        with self._write() as conn:
            n = conn.execute("UPDATE staff SET disabled = ?, updated_at = ? WHERE name = ?",
                             (int(bool(disabled)), self._clock.now(), str(name))).rowcount
            if n:
                self._audit_in(conn, "staff_disabled" if disabled else "staff_enabled",
                               _text(actor, "actor", 64), str(name), None)
        return bool(n)

    def get_staff(self, name: str) -> Staff | None:
        rows = self._read("SELECT name, role, password_hash, disabled FROM staff WHERE name = ?",
                          (str(name),))
        return Staff(rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3])) if rows else None

    def list_staff(self) -> list[Staff]:
        return [Staff(n, r, h, bool(d)) for n, r, h, d in self._read(
            "SELECT name, role, password_hash, disabled FROM staff ORDER BY name")]

    # -------------------------------------------------------------------------------- outbox
    def outbox_append(self, payload: bytes, window_start: int | None = None) -> int:
        """Queue an opaque telemetry payload; returns its sequence number (never reused).

        With `window_start`, the saved open-window counts of that window are deleted in the same
        transaction: a closed window is either still open in the store or in the outbox, never
        both (so a restart can neither lose nor repeat it).
        """
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError("outbox payloads are bytes")
        with self._write() as conn:
            cur = conn.execute("INSERT INTO outbox (created_at, payload) VALUES (?, ?)",
                               (self._clock.now(), bytes(payload)))
            if window_start is not None:
                conn.execute("DELETE FROM open_window WHERE window_start = ?",
                             (int(window_start),))
            return int(cur.lastrowid)

    def open_window_save(self, window_start: int, window_s: int, counts: dict[str, int]) -> None:
        """Keep the raw counts of telemetry's open window (inside the encrypted store only)."""
        body = json.dumps({str(k): int(v) for k, v in counts.items()}, sort_keys=True)
        with self._write() as conn:
            conn.execute("INSERT INTO open_window (window_start, window_s, counts, saved_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT(window_start) DO UPDATE SET "
                         "window_s = excluded.window_s, counts = excluded.counts, "
                         "saved_at = excluded.saved_at",
                         (int(window_start), int(window_s), body, self._clock.now()))

    def open_window_load(self) -> list[tuple[int, int, dict[str, int]]]:
        """Saved open windows (window_start, window_s, raw counts), oldest first; rows that do
        not parse are dropped from the result (and logged by count only)."""
        out: list[tuple[int, int, dict[str, int]]] = []
        bad = 0
        for start, length, body in self._read(
                "SELECT window_start, window_s, counts FROM open_window ORDER BY window_start"):
            try:
                counts = json.loads(body)
                if not isinstance(counts, dict):
                    raise ValueError("not an object")
                out.append((int(start), int(length), {str(k): int(v) for k, v in counts.items()}))
            except (ValueError, TypeError):
                bad += 1
        if bad:
            log.warning("open_window_rows_unreadable", rows=bad)
        return out

    def outbox_pending(self, limit: int = 100) -> list[tuple[int, bytes]]:
        """Unacknowledged payloads, oldest first."""
        return [(int(s), bytes(p)) for s, p in self._read(
            "SELECT seq, payload FROM outbox ORDER BY seq LIMIT ?", (max(0, int(limit)),))]

    def outbox_ack(self, seq: int) -> None:
        """Delete an acknowledged payload (idempotent)."""
        with self._write() as conn:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (int(seq),))
