"""Consent store and gallery: lifecycle on a fake clock, audit chain, staff, outbox, threads,
refusal of bad files (each with its own error, file left byte-identical), schema and rekey."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from edge.consent import opening
from edge.consent.errors import (
    AuditChainError,
    ConsentRequiredError,
    CorruptStoreError,
    InvalidConsentError,
    InvalidEmbeddingError,
    KeyFileMissingError,
    NewerSchemaError,
    NotAStoreError,
    StoreClosedError,
    StoreNotFoundError,
    WrongKeyError,
)
from edge.consent.gallery import Gallery
from edge.consent.keys import read_key_file, write_key_file
from edge.consent.schema import LATEST
from edge.consent.store import ConsentStore
from foundation.settings import parse_settings

DIM = 512
HOUR = 3600.0


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def near(v: np.ndarray, seed: int, noise: float = 0.3) -> np.ndarray:
    w = v + noise * unit(seed) / np.sqrt(1 + noise)
    return (w / np.linalg.norm(w)).astype(np.float32)


@pytest.fixture
def keys(tmp_path) -> Path:
    d = tmp_path / "keys"
    write_key_file(d / "store.key")
    write_key_file(d / "ref.key")
    return d


@pytest.fixture
def opener(tmp_path, keys, fake_clock):
    opened = []

    def open_(**kw) -> ConsentStore:
        kw.setdefault("create", True)
        s = ConsentStore.open(tmp_path / "store.db", keys / "store.key", keys / "ref.key",
                              fake_clock, **kw)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def store(opener) -> ConsentStore:
    return opener()


def enrol_one(store, clock, ref, vec, hours=12.0, **kw):
    c = store.grant_consent(ref, "boarding", "XY123 2027-01-15", clock.now() + hours * HOUR, "ann")
    store.enrol(c.consent_id, [vec], "fr_feature", "ann", **kw)
    return c


# ----------------------------------------------------------------------------- lifecycle
def test_lifecycle_enrol_match_withdraw_expire_board_purge(store, fake_clock):
    gallery = Gallery(store, fake_clock, threshold=0.5, margin=0.05)
    assert gallery.match(unit(1)).reason == "empty"
    a, b, c = unit(1), unit(2), unit(3)
    ca = enrol_one(store, fake_clock, "AAA111", a, hours=2)
    cb = enrol_one(store, fake_clock, "BBB222", b, hours=12)
    cc = enrol_one(store, fake_clock, "CCC333", c, hours=12)
    assert gallery.size == 3

    r = gallery.match(near(a, 10))
    assert (r.consent_id, r.reason) == (ca.consent_id, "match")
    assert r.score > 0.8 and r.runner_up < 0.3
    assert gallery.match(unit(99)).reason == "below_threshold"
    assert gallery.verify(near(b, 11), cb.consent_id).consent_id == cb.consent_id
    assert gallery.verify(near(b, 11), ca.consent_id).reason == "below_threshold"

    # withdrawal by the traveller's code: gone from the gallery at once
    assert store.withdraw(withdrawal_code=cb.withdrawal_code.lower(), actor="kiosk")
    assert not store.withdraw(withdrawal_code=cb.withdrawal_code, actor="kiosk")
    assert gallery.match(b).reason == "below_threshold"
    assert gallery.size == 2
    with pytest.raises(ConsentRequiredError):
        store.enrol(cb.consent_id, [b], "fr_feature", "ann")

    # expiry: consent a (2 h) stops matching before any purge runs
    fake_clock.advance(2 * HOUR)
    assert gallery.match(a).reason == "below_threshold"
    assert store.stats()["expired_unpurged"] == 1
    assert store.purge() == 2  # a's template and a's consent record
    assert store.stats()["expired_unpurged"] == 0

    # boarding deletes by default
    assert gallery.match(c).consent_id == cc.consent_id
    store.mark_boarded(cc.consent_id)
    store.mark_boarded(cc.consent_id)  # idempotent
    assert gallery.match(c).reason == "empty"
    assert store.stats()["templates"] == 0

    # tombstones stay until expiry, then purge removes them
    statuses = {s["consent_id"]: s["status"] for s in store.consent_summary()}
    assert statuses == {cb.consent_id: "withdrawn", cc.consent_id: "boarded"}
    fake_clock.advance(11 * HOUR)
    assert store.purge() == 2
    assert store.consent_summary() == []
    events = [r[0] for r in store.db.read("SELECT event FROM audit ORDER BY seq")]
    assert events.count("enrolled") == 3 and "withdrawn" in events and "boarded" in events
    assert events.count("purged") == 2
    assert store.audit_log.verify() == len(events)


def test_boarding_keeps_templates_when_configured(opener, fake_clock):
    store = opener(delete_on_boarding=False)
    gallery = Gallery(store, fake_clock, 0.5, 0.05)
    c = enrol_one(store, fake_clock, "KEEP1", unit(5))
    store.mark_boarded(c.consent_id)
    assert gallery.match(unit(5)).consent_id == c.consent_id
    assert store.consent_summary()[0]["status"] == "boarded"


def test_withdraw_by_reference_and_id(store, fake_clock):
    c1 = enrol_one(store, fake_clock, "ref 42x", unit(1))
    c2 = enrol_one(store, fake_clock, "OTHER", unit(2))
    assert store.withdraw(reference=" REF42X ", actor="kiosk")
    assert store.withdraw(consent_id=c2.consent_id, actor="kiosk", reason="staff request")
    assert not store.withdraw(consent_id=c1.consent_id, actor="kiosk")
    assert store.active_templates() == []
    with pytest.raises(InvalidConsentError):
        store.withdraw(actor="kiosk")
    with pytest.raises(InvalidConsentError):
        store.withdraw(reference="A", consent_id="b", actor="kiosk")


def test_withdrawal_stops_matching_even_when_the_wal_checkpoint_fails(store, fake_clock,
                                                                      monkeypatch):
    gallery = Gallery(store, fake_clock, threshold=0.4, margin=0.05)
    c = enrol_one(store, fake_clock, "REF77", unit(7))
    assert gallery.match(unit(7)).consent_id == c.consent_id

    def busy_wal() -> None:
        raise opening.DatabaseError("database table is locked")

    monkeypatch.setattr(store.db, "checkpoint", busy_wal)
    with capture_logs() as events:
        assert store.withdraw(reference="REF77", actor="kiosk")
    assert gallery.match(unit(7)).consent_id is None
    assert store.active_templates() == []
    assert any(e["event"] == "consent_store_checkpoint_deferred" for e in events)


def test_retention_cap_and_reenrol_replaces(opener, fake_clock):
    store = opener(max_retention_s=3600)
    c = store.grant_consent("R1", "boarding", "XY1", fake_clock.now() + 10 * HOUR, "ann")
    assert c.expires_at == fake_clock.now() + 3600
    fake_clock.advance(600)
    e1 = store.enrol(c.consent_id, [unit(1), unit(2), unit(3)], "fr_feature", "ann",
                     strategy="each")
    assert len(e1.template_ids) == 3 and e1.expires_at == c.expires_at
    e2 = store.enrol(c.consent_id, [unit(1), near(unit(1), 7)], "fr_feature", "ann")
    assert len(e2.template_ids) == 1
    rows = store.active_templates()
    assert [r.template_id for r in rows] == list(e2.template_ids)
    assert abs(float(np.linalg.norm(rows[0].vector)) - 1.0) < 1e-5


def test_margin_makes_close_calls_ambiguous(store, fake_clock):
    a = unit(1)
    twin = near(a, 2, noise=0.05)
    ca = enrol_one(store, fake_clock, "TWIN1", a)
    enrol_one(store, fake_clock, "TWIN2", twin)
    gallery = Gallery(store, fake_clock, threshold=0.5, margin=0.2)
    r = gallery.match(a)
    assert r.reason == "ambiguous" and r.consent_id is None and r.score - r.runner_up < 0.2
    # one consent's several templates do not compete with each other
    store.withdraw(reference="TWIN2", actor="kiosk")
    store.enrol(ca.consent_id, [a, twin], "fr_feature", "ann", strategy="each")
    r = gallery.match(a)
    assert r.reason == "match" and r.runner_up == -1.0


def test_enrol_refusals(store, fake_clock):
    with pytest.raises(ConsentRequiredError, match="consent first"):
        store.enrol("no-such-consent", [unit(1)], "fr_feature", "ann")
    c = store.grant_consent("R2", "boarding", "XY1", fake_clock.now() + HOUR, "ann")
    for bad in ([], [np.zeros(DIM)], [np.full(DIM, np.nan)], [np.ones((2, DIM))],
                [unit(1), np.ones(DIM + 1)], [unit(i) for i in range(11)]):
        with pytest.raises(InvalidEmbeddingError):
            store.enrol(c.consent_id, bad, "fr_feature", "ann")
    with pytest.raises(InvalidEmbeddingError):
        store.enrol(c.consent_id, [unit(i) for i in range(4)], "fr_feature", "ann",
                    strategy="each")
    store.enrol(c.consent_id, [unit(1)], "fr_feature", "ann")
    c2 = store.grant_consent("R3", "boarding", "XY1", fake_clock.now() + HOUR, "ann")
    with pytest.raises(InvalidEmbeddingError, match="gallery holds 512"):
        store.enrol(c2.consent_id, [np.ones(128)], "other", "ann")
    fake_clock.advance(HOUR)
    with pytest.raises(ConsentRequiredError):
        store.enrol(c.consent_id, [unit(1)], "fr_feature", "ann")
    with pytest.raises(InvalidConsentError):
        store.grant_consent("", "boarding", "XY1", fake_clock.now() + HOUR, "ann")
    with pytest.raises(InvalidConsentError):
        store.grant_consent("R4", "boarding", "XY1", fake_clock.now() - 1, "ann")
    assert store.stats()["templates"] == 0  # nothing half-done


def test_gallery_probe_validation(store, fake_clock):
    enrol_one(store, fake_clock, "P1", unit(1))
    gallery = Gallery(store, fake_clock, 0.5, 0.05)
    for bad in (np.ones(DIM + 1), np.zeros(DIM), np.full(DIM, np.inf), np.ones((1, DIM))):
        with pytest.raises(InvalidEmbeddingError):
            gallery.match(bad)


def test_gallery_incremental_matches_full_reload(store, fake_clock):
    gallery = Gallery(store, fake_clock, 0.5, 0.0)
    consents = [enrol_one(store, fake_clock, f"G{i}", unit(i)) for i in range(300)]
    for c in consents[::2]:
        store.withdraw(consent_id=c.consent_id, actor="kiosk")  # triggers compaction
    fresh = Gallery(store, fake_clock, 0.5, 0.0)
    assert gallery.size == fresh.size == 150
    for i in range(0, 300, 7):
        want = consents[i].consent_id if i % 2 else None
        assert gallery.match(unit(i)).consent_id == fresh.match(unit(i)).consent_id == want
    gallery.close()
    enrol_one(store, fake_clock, "AFTER", unit(999))
    assert gallery.size == 0


# ------------------------------------------------------------------------------ audit
def raw_conn(store: ConsentStore):
    return opening.connect(store.path, store.db.key)


def test_audit_chain_detects_edit_delete_and_reorder(store, fake_clock):
    for i in range(4):
        enrol_one(store, fake_clock, f"AU{i}", unit(i))
    store.audit_log.record("operator_note", "ann", reason="shift start")
    n = store.audit_log.verify()
    assert n == LATEST + 4 * 2 + 1  # one schema_migrated row per migration
    enrolled = LATEST + 2  # the first enrolment's row, after its consent_granted row
    conn = raw_conn(store)
    try:
        conn.execute("UPDATE audit SET reason = 'templates=9 replaced=0' WHERE seq = ?",
                     (enrolled,))
        with pytest.raises(AuditChainError, match=f"#{enrolled}"):
            store.audit_log.verify()
        conn.execute("UPDATE audit SET reason = 'templates=1 replaced=0' WHERE seq = ?",
                     (enrolled,))
        assert store.audit_log.verify() == n
        conn.execute("DELETE FROM audit WHERE seq = 6")
        with pytest.raises(AuditChainError):
            store.audit_log.verify()
    finally:
        conn.close()


def test_audit_rows_carry_no_reference_or_code(store, fake_clock):
    c = enrol_one(store, fake_clock, "SECRETREF9", unit(1))
    store.withdraw(withdrawal_code=c.withdrawal_code, actor="kiosk")
    dump = repr(store.db.read("SELECT * FROM audit"))
    dump += repr(store.db.read("SELECT * FROM consents"))
    assert "SECRETREF9" not in dump and c.withdrawal_code.replace("-", "") not in dump


def test_logs_carry_ids_and_counts_only(store, fake_clock):
    with capture_logs() as logs:
        c = enrol_one(store, fake_clock, "LOGREF1", unit(1))
        Gallery(store, fake_clock, 0.5, 0.05).match(unit(1))
        store.withdraw(reference="LOGREF1", actor="kiosk")
        store.purge()
    assert logs
    for event in logs:
        for value in event.values():
            assert not isinstance(value, np.ndarray | bytes | list)
            assert "LOGREF1" not in str(value) and c.withdrawal_code not in str(value)
    assert "vector" not in repr(store.active_templates())


# ------------------------------------------------------------------------- staff, outbox
def test_staff_accounts(store):
    assert store.staff.get("ann") is None
    store.staff.upsert("ann", "supervisor", "$scrypt$1")
    store.staff.upsert("bob", "agent", "$scrypt$2")
    store.staff.upsert("ann", "agent", "$scrypt$3")
    ann = store.staff.get("ann")
    assert (ann.role, ann.password_hash, ann.disabled) == ("agent", "$scrypt$3", False)
    assert "$scrypt" not in repr(ann)
    assert store.staff.set_disabled("bob", True)
    assert [(s.name, s.disabled) for s in store.staff.all()] == [("ann", False), ("bob", True)]
    assert not store.staff.set_disabled("carol", True)


def test_outbox_sequence_is_never_reused(opener):
    store = opener()
    assert [store.outbox.append(b"w%d" % i) for i in range(3)] == [1, 2, 3]
    store.outbox.ack(3)
    store.outbox.ack(3)
    assert store.outbox.pending() == [(1, b"w0"), (2, b"w1")]
    assert store.outbox.pending(limit=1) == [(1, b"w0")]
    store.outbox.ack(1)
    store.outbox.ack(2)
    store.close()
    store = opener(create=False)
    assert store.outbox.append(b"w3") == 4
    assert store.stats()["outbox_pending"] == 1


def test_threads_share_one_store(store, fake_clock):
    gallery = Gallery(store, fake_clock, 0.5, 0.05)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(10):
                enrol_one(store, fake_clock, f"T{k}X{i}", unit(100 * k + i))
                store.outbox.append(b"x")
                gallery.match(unit(100 * k + i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.stats()["templates"] == 40 == gallery.size
    assert store.stats()["outbox_pending"] == 40
    assert store.audit_log.verify() == LATEST + 40 * 2
    assert len(store.db.connections) >= 4


def test_closed_store_refuses_use(store):
    store.close()
    store.close()
    with pytest.raises(StoreClosedError):
        store.stats()


def test_from_settings(tmp_path, keys, fake_clock):
    settings = parse_settings({"device": {"data_dir": str(tmp_path)},
                               "consent": {"key_file": str(keys / "store.key"),
                                           "hmac_secret_file": str(keys / "ref.key"),
                                           "max_retention_s": 7200}})
    with pytest.raises(StoreNotFoundError):
        ConsentStore.from_settings(settings, fake_clock)
    with ConsentStore.from_settings(settings, fake_clock, create=True) as store:
        assert store.path == tmp_path / "store.db" and store.max_retention_s == 7200
    assert oct((tmp_path / "store.db").stat().st_mode & 0o777) == oct(0o600)


# ------------------------------------------------------------------ refusing bad files
@pytest.fixture
def closed_store(opener, fake_clock) -> Path:
    store = opener()
    for i in range(20):
        enrol_one(store, fake_clock, f"F{i}", unit(i))
    path = store.path
    store.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


def reopen(path, keys, clock, key_name="store.key"):
    return ConsentStore.open(path, keys / key_name, keys / "ref.key", clock)


def assert_refused(path, exc_type, match, fn):
    before = path.read_bytes()
    with pytest.raises(exc_type, match=match):
        fn()
    assert path.read_bytes() == before


def test_wrong_key(closed_store, keys, fake_clock):
    write_key_file(keys / "other.key")
    assert_refused(closed_store, WrongKeyError, "key does not open",
                   lambda: reopen(closed_store, keys, fake_clock, "other.key"))


def test_missing_key_file(closed_store, keys, fake_clock):
    os.unlink(keys / "store.key")
    assert_refused(closed_store, KeyFileMissingError, "not found",
                   lambda: reopen(closed_store, keys, fake_clock))


@pytest.mark.parametrize("where", ["page1", "page3", "last", "salt", "truncate"])
def test_corrupt_file(closed_store, keys, fake_clock, where):
    data = bytearray(closed_store.read_bytes())
    if where == "truncate":
        data = data[:len(data) - 1000]
    else:
        offset = {"page1": 200, "page3": 2 * opening.PAGE_SIZE + 100, "last": len(data) - 300,
                  "salt": 3}
        data[offset[where]] ^= 0x5A
    closed_store.write_bytes(bytes(data))
    assert_refused(closed_store, CorruptStoreError, "damaged",
                   lambda: reopen(closed_store, keys, fake_clock))


@pytest.mark.parametrize("kind", ["text", "empty", "plain_sqlite", "zeros"])
def test_not_a_store(tmp_path, keys, fake_clock, kind):
    path = tmp_path / "store.db"
    if kind == "plain_sqlite":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t(x)")
        conn.commit()
        conn.close()
    else:
        path.write_bytes({"text": b"hello, not a database\n" * 400, "empty": b"",
                          "zeros": bytes(8192)}[kind])
    assert_refused(path, NotAStoreError, "not a consent store|not a store|plain",
                   lambda: reopen(path, keys, fake_clock))


def test_newer_schema_is_refused(closed_store, keys, fake_clock):
    conn = opening.connect(closed_store, read_key_file(keys / "store.key"))
    conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert_refused(closed_store, NewerSchemaError, "upgrade the software",
                   lambda: reopen(closed_store, keys, fake_clock))


def test_missing_store(tmp_path, keys, fake_clock):
    with pytest.raises(StoreNotFoundError, match="provisioning"):
        reopen(tmp_path / "absent.db", keys, fake_clock)
    assert not (tmp_path / "absent.db").exists()


def test_rekey(closed_store, keys, fake_clock):
    store = reopen(closed_store, keys, fake_clock)
    write_key_file(keys / "new.key")
    before = store.stats()
    store.rekey(keys / "new.key")
    assert store.stats()["templates"] == before["templates"] == 20
    assert store.audit_log.verify() == before["audit_rows"] + 1
    store.close()
    with pytest.raises(WrongKeyError):
        reopen(closed_store, keys, fake_clock)
    with reopen(closed_store, keys, fake_clock, "new.key") as again:
        assert len(again.active_templates()) == 20
