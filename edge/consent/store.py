"""The encrypted consent store: consents and templates, with its repositories beside them.

`ConsentStore` owns the database (`edge.consent.database`: file, lock, connections, WAL,
migrations, rekey) and hands it to the repositories: `audit_log` (edge.consent.audit), `staff`
(edge.consent.staff), `outbox` (edge.consent.outbox); the purge is edge.consent.purge and the
gallery's change log edge.consent.changes. It keeps consents and templates itself.

One SQLCipher file keyed with a raw 256-bit key; one connection per thread. Every operation is
one transaction together with its audit row, so a crash leaves whole operations only. Boarding
references and withdrawal codes are stored only as HMACs with the per-device secret. Deletions
(withdrawal, boarding, purge) use `secure_delete` and truncate the WAL so removed template bytes
leave the file. Nothing here logs or returns a reference, a code or an embedding. One process at
a time: an open store holds the exclusive `<store>.lock` (edge.consent.lock).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import structlog

from edge.consent import retention
from edge.consent.audit import AuditLog
from edge.consent.changes import ChangeLog
from edge.consent.database import StoreDatabase
from edge.consent.errors import InvalidConsentError
from edge.consent.keys import read_key_file
from edge.consent.lock import StoreLock
from edge.consent.outbox import Outbox
from edge.consent.purge import purge_expired
from edge.consent.records import Consent, Enrolment, TemplateRow, bounded_text
from edge.consent.repair import remove_orphan_consents
from edge.consent.replace import open_enrolment
from edge.consent.schema import LATEST
from edge.consent.staff import StaffAccounts
from edge.consent.templates import MAX_ENROL_IMAGES as MAX_ENROL_IMAGES
from edge.consent.templates import MAX_TEMPLATES_PER_CONSENT as MAX_TEMPLATES_PER_CONSENT
from edge.consent.templates import templates_from
from foundation.clock import Clock

if TYPE_CHECKING:
    from foundation.settings import Settings

log = structlog.get_logger(__name__)

ORPHAN_GRACE_S = 60.0  # a consent this old without a template is a half-done enrolment
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_REF_RE = re.compile(r"[A-Z0-9]{1,64}")


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


class ConsentStore:
    """Encrypted store of consents and templates; safe to share between threads."""

    def __init__(self, db: StoreDatabase, secret: bytes, clock: Clock, *,
                 max_retention_s: int, delete_on_boarding: bool,
                 orphan_grace_s: float = ORPHAN_GRACE_S) -> None:
        self.db = db
        self.orphan_grace_s = float(orphan_grace_s)
        self._ref_key = hmac.new(secret, b"consentgate/reference/v1", hashlib.sha256).digest()
        self._clock = clock
        self.max_retention_s = int(max_retention_s)
        self.delete_on_boarding = bool(delete_on_boarding)
        audit_key = hmac.new(secret, b"consentgate/audit/v1", hashlib.sha256).digest()
        self.audit_log = AuditLog(db, audit_key, clock)
        self.staff = StaffAccounts(db, self.audit_log, clock)
        self.outbox = Outbox(db, clock)
        self.changes = ChangeLog()

    # ------------------------------------------------------------------ opening and closing
    @classmethod
    def open(cls, path: Path, key_file: Path, hmac_secret_file: Path, clock: Clock, *,
             max_retention_s: int = 86400, delete_on_boarding: bool = True,
             orphan_grace_s: float = ORPHAN_GRACE_S,
             create: bool = False, full_check: bool = True,
             lock: StoreLock | None = None) -> ConsentStore:
        """Open (or with `create=True`, create) the store; refuse bad files without changing them.

        `full_check` authenticates every page at open (cost grows with the store's size).
        The store takes the exclusive `<store>.lock` (edge.consent.lock) for its lifetime and
        raises StoreBusyError when another process holds it; a caller that already holds the
        lock (a provisioning tool spanning several opens) passes it as `lock`, and then keeps
        it after close(). Opening also repairs half-done enrolments (`repair_orphans`).
        """
        secret = read_key_file(hmac_secret_file)
        db, version = StoreDatabase.open(path, key_file, clock, create=create,
                                         full_check=full_check, lock=lock)
        store = cls(db, secret, clock, max_retention_s=max_retention_s,
                    delete_on_boarding=delete_on_boarding, orphan_grace_s=orphan_grace_s)
        try:
            db.migrate(version, lambda conn, target: store.audit_log.record_in(
                conn, "schema_migrated", "system", None, f"version={target}"))
            store.repair_orphans()  # consents a killed enrolment left without a template
        except BaseException:
            store.close()
            raise
        log.info("consent_store_opened", schema_version=LATEST, **store.stats())
        return store

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock, create: bool = False) -> ConsentStore:
        return cls.open(settings.store_path, settings.store_key_file, settings.hmac_secret_file,
                        clock, max_retention_s=settings.consent.max_retention_s,
                        delete_on_boarding=settings.consent.delete_on_boarding,
                        orphan_grace_s=settings.consent.orphan_grace_s, create=create)

    @property
    def path(self) -> Path:
        return self.db.path

    def close(self) -> None:
        """Checkpoint the WAL away and close every connection (idempotent)."""
        self.db.close()

    def __enter__(self) -> ConsentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ hashing
    def _ref_hash(self, reference: str) -> bytes:
        return hmac.new(self._ref_key, b"ref\x00" + _normalise_reference(reference).encode(),
                        hashlib.sha256).digest()

    def _code_hash(self, code: str) -> bytes:
        return hmac.new(self._ref_key, b"code\x00" + _normalise_code(code).encode(),
                        hashlib.sha256).digest()

    # ------------------------------------------------------------------------------ consent
    def grant_consent(self, reference: str, purpose: str, scope: str, expires_at: float,
                      actor: str) -> Consent:
        """Record a consent; returns its id and a one-time withdrawal code for the traveller."""
        ref_hash = self._ref_hash(reference)
        purpose = bounded_text(purpose, "purpose")
        scope = bounded_text(scope, "scope")
        actor = bounded_text(actor, "actor", 64)
        now = self._clock.now()
        effective = retention.consent_expiry(now, float(expires_at), self.max_retention_s)
        consent_id = uuid.uuid4().hex
        code = _new_withdrawal_code()
        with self.db.write() as conn:
            conn.execute("INSERT INTO consents (consent_id, ref_hash, code_hash, purpose, scope, "
                         "granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (consent_id, ref_hash, self._code_hash(code), purpose, scope, now,
                          effective))
            self.audit_log.record_in(conn, "consent_granted", actor, consent_id, None)
        log.info("consent_granted", consent_id=consent_id)
        return Consent(consent_id=consent_id, withdrawal_code=code, granted_at=now,
                       expires_at=effective)

    def enrol(self, consent_id: str, embeddings: Sequence[np.ndarray], model_name: str,
              actor: str, *, strategy: Literal["mean", "each"] = "mean") -> Enrolment:
        """Store templates under a live consent, replacing earlier ones, in one transaction.

        `strategy="mean"`: one template, the re-normalised mean of up to 10 embeddings;
        `"each"`: one template per embedding (at most 3). An earlier live consent of the same
        reference and scope is replaced here (audited `consent_replaced`): one person each.
        """
        vectors = templates_from(embeddings, strategy)
        model_name = bounded_text(model_name, "model name", 64)
        actor = bounded_text(actor, "actor", 64)
        now = self._clock.now()
        with self.db.write() as conn:
            slot = open_enrolment(conn, self.audit_log, str(consent_id),
                                  int(vectors.shape[1]), now, actor)
            replaced, earlier = slot.replaced, slot.earlier
            expires = retention.template_expiry(now, slot.consent_expires_at,
                                                self.max_retention_s)
            ids = []
            images = len(embeddings) if strategy == "mean" else 1
            for vec in vectors:
                cur = conn.execute("INSERT INTO templates (consent_id, model_name, dim, "
                                   "created_at, expires_at, embedding, images) VALUES "
                                   "(?, ?, ?, ?, ?, ?, ?)",
                                   (consent_id, model_name, int(vec.shape[0]), now, expires,
                                    vec.astype("<f4").tobytes(), images))
                ids.append(int(cur.lastrowid))
            self.audit_log.record_in(conn, "enrolled", actor, consent_id, f"templates={len(ids)} "
                                     f"replaced={len(replaced)}")
        self.changes.record(tuple(ids), (*replaced, *earlier))
        if earlier:
            self.db.scrub_wal("replacement")
        log.info("enrolled", consent_id=consent_id, templates=len(ids), replaced=len(replaced))
        return Enrolment(consent_id=consent_id, template_ids=tuple(ids), expires_at=expires)

    def withdraw(self, *, reference: str | None = None, withdrawal_code: str | None = None,
                 consent_id: str | None = None, actor: str, reason: str = "withdrawn") -> bool:
        """Withdraw consent(s) selected by exactly one of reference, code or id: templates are
        deleted at once and the consent is left as an unlinkable tombstone until its expiry.
        Returns whether anything was withdrawn."""
        chosen = [x is not None for x in (reference, withdrawal_code, consent_id)]
        if sum(chosen) != 1:
            raise InvalidConsentError("withdraw needs exactly one of reference, withdrawal code "
                                      "or consent id")
        actor = bounded_text(actor, "actor", 64)
        reason = bounded_text(reason, "reason", 64)
        param: bytes | str
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
        actor = bounded_text(actor, "actor", 64)
        self._retire("consent_id = ? AND withdrawn_at IS NULL AND boarded_at IS NULL",
                     (str(consent_id),), "boarded", actor, None,
                     delete=self.delete_on_boarding)

    def _retire(self, where: str, params: tuple[Any, ...], event: str, actor: str,
                reason: str | None, *, delete: bool) -> bool:
        now = self._clock.now()
        stamp = "withdrawn_at" if event == "withdrawn" else "boarded_at"
        with self.db.write() as conn:
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
                self.audit_log.record_in(conn, event, actor, cid, reason)
        if removed:
            self.changes.record((), tuple(removed))  # the gallery forgets them before anything else
            self.db.scrub_wal("withdrawal" if event == "withdrawn" else "boarding")
        if ids:
            log.info(event, consents=len(ids), templates_deleted=len(removed))
        return bool(ids)

    def purge(self) -> int:
        """Delete expired templates and expired consent records for real; returns rows deleted
        (see edge.consent.purge)."""
        orphans = self.repair_orphans()
        removed, consents = purge_expired(self.db, self.audit_log, self._clock.now())
        if removed:
            self.changes.record((), tuple(removed))  # the gallery forgets them before anything
        if removed or consents:
            self.db.scrub_wal("purge")
            log.info("purged", templates=len(removed), consents=consents)
        return len(removed) + consents + orphans

    def repair_orphans(self) -> int:
        """Delete consents that a killed enrolment left without a template and that were never
        enrolled (no receipt was given), once older than `orphan_grace_s`; returns how many
        (see edge.consent.repair). Runs at every open and every purge."""
        orphans = remove_orphan_consents(self.db, self.audit_log, self._clock.now(),
                                         self.orphan_grace_s)
        if orphans:
            self.db.scrub_wal("orphan_repair")
            log.warning("orphan_consents_removed", count=len(orphans))
        return len(orphans)

    def rekey(self, new_key_file: Path) -> None:
        """Re-encrypt the store under the key in `new_key_file`, then verify it (audited).

        For provisioning's key rotation with the daemon stopped; other threads reconnect.
        """
        self.db.rekey(new_key_file)
        self.audit_log.record("rekeyed", "provisioning")
        log.info("consent_store_rekeyed")

    # ------------------------------------------------------------------------------ queries
    def stats(self) -> dict[str, int]:
        now = self._clock.now()

        def one(sql: str, *p: object) -> int:
            return int(self.db.read(sql, p)[0][0])

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
        for cid, purpose, scope, granted, expires, boarded, withdrawn, n in self.db.read(
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
        """Unexpired gallery templates of live consents (never a sealed one), as float32."""
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
                            vector=np.frombuffer(blob, dtype="<f4").astype(np.float32),
                            scope=str(scope), images=int(images))
                for tid, cid, exp, blob, scope, images in self.db.read(
                    "SELECT t.template_id, t.consent_id, t.expires_at, t.embedding, c.scope, "
                    "t.images FROM "
                    "templates t JOIN consents c ON c.consent_id = t.consent_id WHERE "
                    "t.expires_at > ? AND c.expires_at > ? AND c.withdrawn_at IS NULL AND "
                    "t.sealed = 0" + extra + " ORDER BY t.template_id", (now, now, *params))]
