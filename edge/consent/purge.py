"""The purge: expired templates and consent records leave the store for real.

Children (templates) go before their parents (consents). A table most of whose rows expired is
emptied and refilled with its survivors instead of deleted from row by row (a whole-table clear
frees pages without per-row b-tree work; each survivor costs about two deleted rows to copy out
and back: break-even measured near 70% expired). `secure_delete` zeroes every freed page.
"""

from __future__ import annotations

from typing import Any

from edge.consent.audit import AuditLog
from edge.consent.database import StoreDatabase
from edge.consent.errors import CorruptStoreError

REBUILD_MIN_ROWS = 1024
REBUILD_FRACTION = 0.75


def purge_expired(db: StoreDatabase, audit: AuditLog, now: float) -> tuple[list[int], int]:
    """Delete expired templates and consent records in one transaction; returns the removed
    template ids and the number of consent rows deleted.

    A table most of whose rows expired (at least `REBUILD_MIN_ROWS` and `REBUILD_FRACTION`
    of it) is emptied and refilled with its survivors instead of being deleted from row
    by row: see `_refill`. Template ids and the id sequence are kept either way. The caller
    tells the gallery and scrubs the WAL after the commit.
    """
    conn = db.conn()
    # Children (templates) are deleted explicitly before their parents (consents), so the
    # purge needs no cascade; with foreign keys off, a whole-table DELETE is SQLite's
    # truncate (page-level clear) and needs no statement journal. The pragma only takes
    # effect outside a transaction; it is restored whatever happens.
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.write() as conn:
            removed = [r[0] for r in conn.execute(
                "SELECT template_id FROM templates WHERE expires_at <= ?", (now,))]
            removed += [r[0] for r in conn.execute(
                "SELECT t.template_id FROM consents c JOIN templates t ON t.consent_id = "
                "c.consent_id WHERE c.expires_at <= ? AND t.expires_at > ?", (now, now))]
            total = int(conn.execute("SELECT count(*) FROM templates").fetchone()[0])
            if _worth_refilling(len(removed), total):
                # CROSS JOIN keeps the expiry index driving (the survivors only); a join
                # ordered by id would scan, and so decrypt, the whole table first
                _refill(conn, "templates", "SELECT t.* FROM templates t CROSS JOIN "
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
            if _worth_refilling(consents, int(conn.execute(
                    "SELECT count(*) FROM consents").fetchone()[0])):
                _refill(conn, "consents", "SELECT * FROM consents WHERE expires_at > ?",
                             (now,))
            elif consents:
                conn.execute("DELETE FROM consents WHERE expires_at <= ?", (now,))
            if removed or consents:
                audit.record_in(conn, "purged", "system", None,
                               f"templates={len(removed)} consents={consents}")
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return removed, consents


def _worth_refilling(expired: int, total: int) -> bool:
    return expired >= REBUILD_MIN_ROWS and expired >= REBUILD_FRACTION * total

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
