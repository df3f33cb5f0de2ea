"""One consent per booking reference and scope (flight and day): enrolling a reference again for
the same scope retires the earlier consent, inside the enrolment's own transaction.

The earlier consent's templates are deleted and the consent is left as an unlinkable tombstone
(withdrawn now, reference and withdrawal-code hashes cleared), audited `consent_replaced` with
the new consent's id, so two different people can never be enrolled under one reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge.consent import retention
from edge.consent.audit import AuditLog
from edge.consent.errors import ConsentRequiredError, InvalidEmbeddingError


@dataclass(frozen=True)
class EnrolmentSlot:
    """A live consent made ready for new templates: its expiry and scope, and the template ids
    the enrolment removed (its own earlier ones, and those of the consent it replaced)."""

    consent_expires_at: float
    scope: str
    replaced: list[int]
    earlier: list[int]


def open_enrolment(conn: Any, audit_log: AuditLog, consent_id: str, dim: int, now: float,
                   actor: str) -> EnrolmentSlot:
    """Check that `consent_id` is live and `dim` is the store's embedding size, then delete
    the consent's earlier templates and retire an earlier consent of the same reference and
    scope, in the caller's transaction `conn`."""
    row = conn.execute("SELECT expires_at, withdrawn_at, code_hash, ref_hash, scope "
                       "FROM consents WHERE consent_id = ?", (consent_id,)).fetchone()
    if row is None or row[1] is not None or row[2] is None \
            or not retention.is_live(row[0], now):
        raise ConsentRequiredError("no live consent for this enrolment (unknown, expired, "
                                   "withdrawn or already boarded): record the traveller's "
                                   "consent first")
    dim_row = conn.execute("SELECT dim FROM templates WHERE consent_id != ? LIMIT 1",
                           (consent_id,)).fetchone()
    if dim_row is not None and dim_row[0] != dim:
        raise InvalidEmbeddingError(f"embeddings have {dim} values but the gallery holds "
                                    f"{dim_row[0]}: use the configured embedder")
    replaced = [r[0] for r in conn.execute(
        "SELECT template_id FROM templates WHERE consent_id = ?", (consent_id,))]
    conn.execute("DELETE FROM templates WHERE consent_id = ?", (consent_id,))
    earlier = retire_earlier(conn, audit_log, consent_id, row[3], row[4], now, actor)
    return EnrolmentSlot(row[0], row[4], replaced, earlier)


def retire_earlier(conn: Any, audit_log: AuditLog, consent_id: str, ref_hash: bytes | None,
                   scope: str, now: float, actor: str) -> list[int]:
    """Tombstone the reference's other live consents of `scope` (the caller's transaction
    `conn`); returns the template ids deleted."""
    removed: list[int] = []
    if ref_hash is None:
        return removed
    for (cid,) in conn.execute(
            "SELECT consent_id FROM consents WHERE ref_hash = ? AND scope = ? AND "
            "consent_id != ? AND withdrawn_at IS NULL", (ref_hash, scope, consent_id)).fetchall():
        removed += [r[0] for r in conn.execute(
            "SELECT template_id FROM templates WHERE consent_id = ?", (cid,))]
        conn.execute("DELETE FROM templates WHERE consent_id = ?", (cid,))
        conn.execute("UPDATE consents SET withdrawn_at = ?, ref_hash = NULL, code_hash = NULL "
                     "WHERE consent_id = ?", (now, cid))
        audit_log.record_in(conn, "consent_replaced", actor, cid, f"by={consent_id}")
    return removed
