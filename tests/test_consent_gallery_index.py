"""The gallery's two-stage 1:N search (certified int8 bounds, exact float32 re-score) gives the
exhaustive search's answer: same consent, reason, score and runner-up, on clustered galleries
with near-duplicate travellers, genuine pairs at realistic similarity, and across incremental
changes (withdrawal, expiry, boarding, new enrolments); and legacy 4 KiB-page stores open."""

from __future__ import annotations

import numpy as np
import pytest

from edge.consent import coarse, opening
from edge.consent.database import StoreDatabase
from edge.consent.gallery import Gallery
from edge.consent.keys import read_key_file, write_key_file
from edge.consent.store import ConsentStore

DIM = 512
HOUR = 3600.0


def unit_rows(m: np.ndarray) -> np.ndarray:
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, n: int, clusters: int, spread: float) -> np.ndarray:
    """Unit vectors around shared centres: many travellers look alike (impostor scores high)."""
    centres = unit_rows(rng.standard_normal((clusters, DIM)))
    noise = unit_rows(rng.standard_normal((n, DIM)))
    return unit_rows(centres[rng.integers(0, clusters, n)] + spread * noise)


def genuine(rng: np.random.Generator, rows: np.ndarray, target: float) -> np.ndarray:
    """Probes whose cosine with their row is about `target` (real embedders: ~0.4-0.8)."""
    noise = unit_rows(rng.standard_normal(rows.shape))
    noise -= (noise * rows).sum(1, keepdims=True) * rows
    noise = unit_rows(noise)
    return unit_rows(target * rows + np.sqrt(1 - target ** 2) * noise)


def bulk_load(store: ConsentStore, now: float, vectors: np.ndarray, hours: float,
              per_consent: int = 1, prefix: str = "c") -> None:
    """Setup only: many consents and templates in one transaction (enrol() is one commit each)."""
    with store.db.write() as conn:
        for i, vec in enumerate(vectors):
            cid = f"{prefix}{i // per_consent}"
            if i % per_consent == 0:
                conn.execute("INSERT INTO consents (consent_id, ref_hash, code_hash, purpose, "
                             "scope, granted_at, expires_at) VALUES (?, ?, ?, 'boarding', 'T', "
                             "?, ?)", (cid, cid.encode(), cid.encode() + b"c", now,
                                       now + hours * HOUR))
            conn.execute("INSERT INTO templates (consent_id, model_name, dim, created_at, "
                         "expires_at, embedding) VALUES (?, 'fr', ?, ?, ?, ?)",
                         (cid, DIM, now, now + hours * HOUR, vec.astype("<f4").tobytes()))


@pytest.fixture
def store(tmp_path, fake_clock):
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    s = ConsentStore.open(tmp_path / "s.db", tmp_path / "store.key", tmp_path / "ref.key",
                          fake_clock, create=True, max_retention_s=86400)
    yield s
    s.close()


def assert_same(fast: Gallery, exact: Gallery, probes: np.ndarray) -> list[str]:
    reasons = []
    for p in probes:
        a, b = fast.match(p), exact.match(p)
        assert (a.consent_id, a.reason) == (b.consent_id, b.reason)
        assert a.score == pytest.approx(b.score, abs=1e-5)
        assert a.runner_up == pytest.approx(b.runner_up, abs=1e-5)
        reasons.append(b.reason)
    return reasons


def test_two_stage_equals_exhaustive_search(store, fake_clock):
    rng = np.random.default_rng(11)
    vecs = clustered(rng, 5000, clusters=40, spread=0.9)
    bulk_load(store, fake_clock.now(), vecs, 12, per_consent=2)
    fast = Gallery(store, fake_clock, 0.45, 0.05, index_min=0, block_rows=1024)
    exact = Gallery(store, fake_clock, 0.45, 0.05, index_min=10**9)
    assert fast._index.sealed_rows == 4 * 1024  # four sealed blocks and an exact tail
    picks = rng.integers(0, len(vecs), 60)
    probes = np.concatenate([genuine(rng, vecs[picks[:30]], 0.6),
                             genuine(rng, vecs[picks[30:]], 0.9),
                             clustered(rng, 20, clusters=40, spread=0.5),   # look-alikes
                             unit_rows(vecs[0:40:4] + vecs[2:42:4]),        # between two
                             unit_rows(rng.standard_normal((10, DIM)))])    # strangers
    reasons = assert_same(fast, exact, probes)
    assert {"match", "ambiguous", "below_threshold"} <= set(reasons)

    # Incremental changes: withdrawals and boarding (rows zeroed, blocks rebuilt), expiry,
    # new enrolments; a removed template never matches, even probed with itself.
    withdrawn = [f"c{i}" for i in range(0, 600, 7)]
    gone_rows = [fast._row_of[2 * int(cid[1:]) + 1] for cid in withdrawn]  # template ids
    for cid in withdrawn:
        store.withdraw(consent_id=cid, actor="kiosk")
    # the index was rebuilt without them: their codes are zero, so their bounds straddle 0
    lower, upper = fast._index.bounds(vecs[0])
    assert np.all(lower[gone_rows] <= 0) and np.all(upper[gone_rows] >= 0)
    assert float(np.abs(upper[gone_rows]).max()) < 0.01
    store.mark_boarded("c1001")
    extra = clustered(rng, 40, clusters=40, spread=0.9)
    new_ids = set()
    for i, vec in enumerate(extra):
        c = store.grant_consent(f"NEW{i}", "boarding", "T", fake_clock.now() + 2 * HOUR, "ann")
        store.enrol(c.consent_id, [vec], "fr", "ann")
        new_ids.add(c.consent_id)
    assert sum(fast.match(v).consent_id in new_ids for v in extra) > 30
    assert_same(fast, exact, np.concatenate([probes, genuine(rng, extra, 0.7)]))
    for cid in [*withdrawn[:5], "c1001"]:
        row = int(cid[1:]) * 2
        for p in (vecs[row], vecs[row + 1]):
            assert fast.match(p).consent_id != cid
    fake_clock.advance(3 * HOUR)  # the new enrolments expire (not purged yet)
    assert not any(fast.match(v).consent_id in new_ids for v in extra)
    assert_same(fast, exact, genuine(rng, extra, 0.9))
    fresh = Gallery(store, fake_clock, 0.45, 0.05, index_min=0, block_rows=1024)
    assert_same(fresh, exact, probes)
    for g in (fast, exact, fresh):
        g.close()


def test_index_bounds_are_guarantees():
    rng = np.random.default_rng(5)
    rows = clustered(rng, 2048, clusters=8, spread=0.7)
    rows[3] = 0.0  # a removed (zeroed) row
    index = coarse.Int8Blocks(1024)
    index.sync(rows, len(rows))
    for q in np.concatenate([genuine(rng, rows[:20], 0.8), unit_rows(
            rng.standard_normal((20, DIM)))]):
        lower, upper = index.bounds(q)
        exact = rows.astype(np.float64) @ q.astype(np.float64)
        assert np.all(lower <= exact) and np.all(exact <= upper)
        assert float((upper - lower).max()) < 0.05  # tight enough to prune


def test_small_galleries_search_exhaustively(store, fake_clock):
    rng = np.random.default_rng(3)
    bulk_load(store, fake_clock.now(), clustered(rng, 300, 5, 0.8), 12)
    g = Gallery(store, fake_clock, 0.45, 0.05)  # default index_min: 20 000
    assert g._index.sealed_rows == 0
    g.close()


def test_legacy_4k_page_store_opens(tmp_path, fake_clock):
    write_key_file(tmp_path / "store.key")
    write_key_file(tmp_path / "ref.key")
    path = tmp_path / "old.db"
    path.touch(mode=0o600)
    db = StoreDatabase(path, read_key_file(tmp_path / "store.key"), fake_clock,
                       page_size=opening.LEGACY_PAGE_SIZE)
    old = ConsentStore(db, read_key_file(tmp_path / "ref.key"), fake_clock,
                       max_retention_s=86400, delete_on_boarding=True)
    db.migrate(0, lambda conn, target: old.audit_log.record_in(
        conn, "schema_migrated", "system", None, f"version={target}"))
    c = old.grant_consent("OLD1", "boarding", "T", fake_clock.now() + HOUR, "ann")
    old.enrol(c.consent_id, [unit_rows(np.ones((1, DIM)))[0]], "fr", "ann")
    old.close()
    key = read_key_file(tmp_path / "store.key")
    assert opening.page_size_of(path, key) == opening.LEGACY_PAGE_SIZE
    with ConsentStore.open(path, tmp_path / "store.key", tmp_path / "ref.key",
                           fake_clock) as store:
        assert len(store.active_templates()) == 1
        assert store.audit_log.verify() >= 3


def test_the_integer_kernel_is_exact_here_or_the_float_codes_stand_in(monkeypatch):
    # u8u8: exact on AVX2-only CPUs too, where u8s8 saturates int16 pair sums
    assert coarse.kernel_exact(DIM)
    monkeypatch.setattr(coarse, "kernel_exact", lambda dim=512: False)
    rng = np.random.default_rng(9)
    rows = clustered(rng, 1024, clusters=4, spread=0.7)
    index = coarse.Int8Blocks(512)
    index.sync(rows, len(rows))
    for q in genuine(rng, rows[:10], 0.8):
        lower, upper = index.bounds(q)
        exact = rows.astype(np.float64) @ q.astype(np.float64)
        assert np.all(lower <= exact) and np.all(exact <= upper)
