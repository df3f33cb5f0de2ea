"""Repair of half-done enrolments: consents left without a template and never receipted.

The kiosk records a consent and then its template in two transactions (grant, then enrol), and
undoes the consent when the enrolment fails; a process killed between the two (kill -9, power)
leaves a consent row with no template, for which the traveller never got a receipt. At every
open of the store (and at every purge) such consents older than a short grace period are
deleted: live (not withdrawn, not boarded), no template row, and no `enrolled` audit row (a
consent whose templates expired or were purged was enrolled, and keeps its record until its own
expiry). The grace period leaves an enrolment in flight alone. Audited `orphan_consents_removed`
with the ids and the count only.
"""

from __future__ import annotations

from edge.consent.audit import AuditLog
from edge.consent.database import StoreDatabase

IDS_PER_AUDIT_ROW = 20
_CHUNK = 500


def remove_orphan_consents(db: StoreDatabase, audit: AuditLog, now: float,
                           grace_s: float) -> list[str]:
    """Delete consents without templates that were never enrolled and were granted more than
    `grace_s` ago, in one transaction with their audit rows; returns their ids."""
    with db.write() as conn:
        candidates = [r[0] for r in conn.execute(
            "SELECT c.consent_id FROM consents c WHERE c.withdrawn_at IS NULL AND "
            "c.boarded_at IS NULL AND c.granted_at <= ? AND NOT EXISTS (SELECT 1 FROM "
            "templates t WHERE t.consent_id = c.consent_id) ORDER BY c.granted_at, "
            "c.consent_id", (now - grace_s,))]
        enrolled: set[str] = set()
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start:start + _CHUNK]
            enrolled.update(r[0] for r in conn.execute(
                "SELECT DISTINCT subject FROM audit WHERE event = 'enrolled' AND subject IN "
                f"({','.join('?' * len(chunk))})", chunk))
        orphans = [cid for cid in candidates if cid not in enrolled]
        for start in range(0, len(orphans), _CHUNK):
            chunk = orphans[start:start + _CHUNK]
            conn.execute(f"DELETE FROM consents WHERE consent_id IN "
                         f"({','.join('?' * len(chunk))})", chunk)
        for start in range(0, len(orphans), IDS_PER_AUDIT_ROW):
            ids = orphans[start:start + IDS_PER_AUDIT_ROW]
            audit.record_in(conn, "orphan_consents_removed", "system", None,
                            f"count={len(orphans)} ids={','.join(ids)}")
    return orphans
