"""One consent per booking reference and scope (flight and day): enrolling a reference again for
the same scope retires the earlier consent, inside the enrolment's own transaction.

The earlier consent's templates are deleted and the consent is left as an unlinkable tombstone
(withdrawn now, reference and withdrawal-code hashes cleared), audited `consent_replaced` with
the new consent's id, so two different people can never be enrolled under one reference.
"""

from __future__ import annotations

from typing import Any

from edge.consent.audit import AuditLog


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
