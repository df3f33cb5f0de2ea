"""Forensics: after withdrawal and purge, the template bytes are gone from the store file and
its WAL, checked on the DECRYPTED pages (SQLCipher 4 page layout, AES-256-CBC with the raw key).
A positive control proves the decryptor finds template bytes while they are stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers.store_pages import page_images

from edge.consent import purge
from edge.consent.keys import write_key_file
from edge.consent.store import ConsentStore


def plaintext(path: Path, key: bytes) -> bytes:
    """All decrypted page images of the database file and of every frame in its WAL."""
    return b"".join(page_images(path, key))


def traces(blob: bytes, haystack: bytes, chunk: int = 16) -> int:
    """How many 16-byte pieces of `blob` occur in `haystack`."""
    return sum(blob[i:i + chunk] in haystack for i in range(0, len(blob) - chunk + 1, chunk))


def test_withdrawn_and_purged_templates_leave_no_trace(tmp_path, fake_clock):
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    key = bytes.fromhex((tmp_path / "store.key").read_text()[:64])
    store = ConsentStore.open(tmp_path / "store.db", tmp_path / "store.key",
                              tmp_path / "ref.key", fake_clock, create=True)
    rng = np.random.default_rng(7)
    vecs = [v / np.linalg.norm(v) for v in rng.standard_normal((3, 512)).astype(np.float32)]
    ids = []
    for i, (vec, hours) in enumerate(zip(vecs, (12, 1, 12), strict=True)):
        c = store.grant_consent(f"FOR{i}", "boarding", "XY1",
                                fake_clock.now() + hours * 3600, "ann")
        store.enrol(c.consent_id, [vec], "fr_feature", "ann")
        ids.append(c.consent_id)
    blobs = [row.vector.astype("<f4").tobytes() for row in store.active_templates()]
    assert len(blobs) == 3 and all(len(b) == 2048 for b in blobs)

    before = plaintext(store.path, key)
    assert all(traces(b, before) == len(b) // 16 for b in blobs)  # the decryptor sees them

    store.withdraw(consent_id=ids[0], actor="kiosk")   # deleted at once
    fake_clock.advance(3600)                            # template 1 expires
    assert store.purge() >= 1

    after = plaintext(store.path, key)
    assert traces(blobs[0], after) == 0, "withdrawn template still readable"
    assert traces(blobs[1], after) == 0, "purged template still readable"
    assert traces(blobs[2], after) == len(blobs[2]) // 16  # the live one is still there
    store.close()
    final = plaintext(store.path, key)
    assert traces(blobs[0], final) == traces(blobs[1], final) == 0


def test_bulk_purge_refill_leaves_no_trace_and_keeps_ids(tmp_path, fake_clock, monkeypatch):
    """The bulk purge path (table emptied and refilled with its survivors) zeroes the purged
    templates' pages like the row-by-row one, keeps the survivors' ids and never reuses an id."""
    monkeypatch.setattr(purge, "REBUILD_MIN_ROWS", 2)  # exercise it on a small store
    refilled: list[str] = []
    real_refill = purge._refill

    def spy(conn, table, survivors, params):
        refilled.append(table)
        real_refill(conn, table, survivors, params)

    monkeypatch.setattr(purge, "_refill", spy)
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    key = bytes.fromhex((tmp_path / "store.key").read_text()[:64])
    store = ConsentStore.open(tmp_path / "store.db", tmp_path / "store.key",
                              tmp_path / "ref.key", fake_clock, create=True)
    rng = np.random.default_rng(11)
    vecs = [v / np.linalg.norm(v) for v in rng.standard_normal((12, 512)).astype(np.float32)]
    keep = {}
    for i, vec in enumerate(vecs):  # 10 expire in 1 h, 2 live 12 h
        c = store.grant_consent(f"BULK{i}", "boarding", "XY1",
                                fake_clock.now() + (12 if i in (3, 8) else 1) * 3600, "ann")
        ids = store.enrol(c.consent_id, [vec], "fr_feature", "ann").template_ids
        if i in (3, 8):
            keep[ids[0]] = c.consent_id
    blobs = {row.template_id: row.vector.astype("<f4").tobytes()
             for row in store.active_templates()}
    top_id = max(blobs)
    assert traces(blobs[top_id], plaintext(store.path, key)) == 128  # positive control

    fake_clock.advance(3600)
    assert store.purge() == 20  # 10 templates + 10 consents
    assert refilled == ["templates", "consents"]
    after = plaintext(store.path, key)
    for tid, blob in blobs.items():
        expected = len(blob) // 16 if tid in keep else 0
        assert traces(blob, after) == expected, f"template {tid}"
    assert {r.template_id: r.consent_id for r in store.active_templates()} == keep
    assert [r[0] for r in store.db.read("PRAGMA integrity_check")] == ["ok"]
    assert store.db.read("PRAGMA foreign_key_check") == []
    assert store.db.read("PRAGMA foreign_keys")[0][0] == 1  # restored after the purge
    assert {c["consent_id"] for c in store.consent_summary()} == set(keep.values())
    assert store.audit_log.verify() > 0

    # every template gone: the id sequence still continues, ids are never reused
    fake_clock.advance(12 * 3600)
    assert store.purge() == 4
    assert refilled[2:] == ["templates", "consents"]  # no survivor at all this time
    assert traces(blobs[top_id], plaintext(store.path, key)) == 0
    c = store.grant_consent("NEW1", "boarding", "XY1", fake_clock.now() + 3600, "ann")
    new_ids = store.enrol(c.consent_id, [vecs[0]], "fr_feature", "ann").template_ids
    assert new_ids[0] > top_id
    store.close()
