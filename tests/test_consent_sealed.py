"""Token mode's store side: the token format, sealed enrolment (the gallery never sees it),
unsealing with one token, every refusal checked before anything is decrypted, the associated
data binding consent, scope and expiry, and deletion exactly as for gallery templates."""

from __future__ import annotations

import numpy as np
import pytest

from edge.consent import schema
from edge.consent.errors import ConsentRequiredError, CorruptStoreError
from edge.consent.gallery import Gallery
from edge.consent.keys import write_key_file
from edge.consent.sealed import SealedTemplates, associated_data, seal, unseal
from edge.consent.store import ConsentStore
from edge.consent.token_format import PassengerKey, TokenError, parse_token

DIM = 512
HOUR = 3600.0
SCOPE = "XY123 2027-01-15"


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def enrol_sealed(store, clock, ref: str, vec: np.ndarray, scope: str = SCOPE,
                 hours: float = 12.0) -> tuple[str, str]:
    consent = store.grant_consent(ref, "boarding", scope, clock.now() + hours * HOUR, "ann")
    _, key = SealedTemplates(store, clock).enrol(consent.consent_id, [vec.copy()], "fr_feature",
                                                 "ann")
    token = key.token()
    key.wipe()
    assert not any(key.key)
    return consent.consent_id, token


# ------------------------------------------------------------------------------ the token
def test_token_round_trips_ignoring_case_and_whitespace():
    key = PassengerKey.new("0123456789abcdef0123456789abcdef")
    token = key.token()
    assert len(token) == 98 and token.startswith("CG1.") and token == token.upper()
    for text in (token, token.lower(), f"  {token[:40]}\n{token[40:]} "):
        parsed = parse_token(text)
        assert parsed.consent_id == key.consent_id and parsed.key == key.key
    assert "key=" not in repr(key) and key.key.hex() not in repr(key)


@pytest.mark.parametrize("change", ["check", "key", "consent", "version", "truncate", "long",
                                    "junk"])
def test_damaged_or_foreign_tokens_are_refused_as_invalid(change):
    token = PassengerKey.new("0123456789abcdef0123456789abcdef").token()
    version, consent, key, check = token.split(".")
    flip = {"A": "B"}
    bad = {
        "check": f"{version}.{consent}.{key}.{''.join(flip.get(c, 'A') for c in check[:1])}"
                 f"{check[1:]}",
        "key": f"{version}.{consent}.{'B' if key[0] != 'B' else 'C'}{key[1:]}.{check}",
        "consent": f"{version}.{'F' if consent[0] != 'F' else 'E'}{consent[1:]}.{key}.{check}",
        "version": f"CG2.{consent}.{key}.{check}",
        "truncate": token[:-1],
        "long": token + "A" * 300,
        "junk": "https://example.com/?q=1",
    }[change]
    with pytest.raises(TokenError) as err:
        parse_token(bad)
    assert err.value.reason == "token_invalid"
    assert token not in str(err.value) and key not in str(err.value)


# --------------------------------------------------------------------- sealed enrolment
def test_sealed_template_is_stored_but_never_in_the_gallery(store, fake_clock):
    vec = unit(1)
    cid, token = enrol_sealed(store, fake_clock, "AAA111", vec)
    assert store.active_templates() == []  # the gallery cannot load it
    gallery = Gallery(store, fake_clock, 0.4, 0.05)
    assert gallery.size == 0 and gallery.match(vec).reason == "empty"
    assert store.stats()["templates"] == 1
    (blob, sealed, dim), = store.db.read("SELECT embedding, sealed, dim FROM templates")
    assert sealed == 1 and dim == DIM and len(blob) == 12 + 4 * DIM + 16
    assert vec.astype("<f4").tobytes()[:64] not in blob  # ciphertext, not the vector
    unsealed = SealedTemplates(store, fake_clock).open(token)
    assert unsealed.consent_id == cid
    assert np.allclose(unsealed.vector, vec, atol=1e-6)
    result = unsealed.verify(vec, 0.414, fake_clock.now())
    assert result.matched and result.consent_id == cid and result.candidate == cid
    other = unsealed.verify(unit(2), 0.414, fake_clock.now())
    assert not other.matched and other.reason == "below_threshold"
    unsealed.wipe()
    assert not unsealed.vector.any()
    gallery.close()


def test_enrolment_needs_a_live_consent(store, fake_clock):
    sealed = SealedTemplates(store, fake_clock)
    with pytest.raises(ConsentRequiredError):
        sealed.enrol("f" * 32, [unit(1)], "fr_feature", "ann")
    with pytest.raises(ConsentRequiredError):
        sealed.enrol("not-an-id", [unit(1)], "fr_feature", "ann")
    assert store.stats()["templates"] == 0


def test_one_token_opens_exactly_its_own_template(store, fake_clock):
    cids, tokens = zip(*(enrol_sealed(store, fake_clock, f"REF{i}", unit(i)) for i in range(4)),
                       strict=True)
    sealed = SealedTemplates(store, fake_clock)
    for cid, token in zip(cids, tokens, strict=True):
        assert sealed.open(token).consent_id == cid
    # another traveller's key on this traveller's consent id: refused, nothing decrypted
    mixed = PassengerKey(cids[0], parse_token(tokens[1]).key).token()
    with pytest.raises(TokenError) as err:
        sealed.open(mixed)
    assert err.value.reason == "token_tampered"


@pytest.mark.parametrize("column, value", [("scope", "ZZ999 2027-01-15"),
                                           ("expires_at", None)])
def test_editing_the_store_breaks_the_seal(store, fake_clock, column, value):
    """The associated data binds the consent's scope and the template's expiry: someone with
    the store key who moves a template to another flight or keeps it longer cannot use it."""
    cid, token = enrol_sealed(store, fake_clock, "AAA111", unit(1))
    with store.db.write() as conn:
        if column == "scope":
            conn.execute("UPDATE consents SET scope = ? WHERE consent_id = ?", (value, cid))
        else:
            conn.execute("UPDATE templates SET expires_at = expires_at + 3600 WHERE "
                         "consent_id = ?", (cid,))
    with pytest.raises(TokenError) as err:
        SealedTemplates(store, fake_clock).open(token)
    assert err.value.reason == "token_tampered"


def test_seal_unseal_binds_associated_data():
    key = bytearray(b"\x01" * 32)
    aad = associated_data("a" * 32, SCOPE, 1.5e9)
    blob = seal(unit(3), key, aad)
    assert np.allclose(unseal(blob, key, aad, DIM), unit(3))
    for wrong_key, wrong_aad in ((bytearray(b"\x02" * 32), aad),
                                 (key, associated_data("b" * 32, SCOPE, 1.5e9)),
                                 (key, associated_data("a" * 32, SCOPE, 1.5e9 + 1))):
        with pytest.raises(TokenError):
            unseal(blob, wrong_key, wrong_aad, DIM)


# ------------------------------------------------------------------------------ refusals
def test_refusals_are_checked_before_anything_is_decrypted(store, fake_clock, monkeypatch):
    import edge.consent.sealed as sealed_module

    calls = []
    real = sealed_module.unseal
    monkeypatch.setattr(sealed_module, "unseal", lambda *a: calls.append(1) or real(*a))
    sealed = SealedTemplates(store, fake_clock)

    def reason(token: str, scopes=None) -> str:
        with pytest.raises(TokenError) as err:
            sealed.open(token, scopes)
        return err.value.reason

    _, flight = enrol_sealed(store, fake_clock, "FLY001", unit(1))
    assert reason(flight, {"ZZ999 2027-01-15"}) == "wrong_flight"
    _, withdrawn = enrol_sealed(store, fake_clock, "WDR001", unit(2))
    store.withdraw(reference="WDR001", actor="ann")
    assert reason(withdrawn) == "token_withdrawn"
    boarded_id, boarded = enrol_sealed(store, fake_clock, "BRD001", unit(3))
    store.mark_boarded(boarded_id)
    assert reason(boarded) == "token_used"
    _, expired = enrol_sealed(store, fake_clock, "EXP001", unit(4), hours=0.5)
    gallery_consent = store.grant_consent("GAL001", "boarding", SCOPE,
                                          fake_clock.now() + HOUR, "ann")
    store.enrol(gallery_consent.consent_id, [unit(5)], "fr_feature", "ann")
    gallery_token = PassengerKey.new(gallery_consent.consent_id).token()
    assert reason(gallery_token) == "token_unknown"  # a face-only enrolment has no key
    assert reason(PassengerKey.new("e" * 32).token()) == "token_unknown"
    fake_clock.advance(HOUR)
    assert reason(expired) == "token_expired"
    store.purge()
    assert reason(expired) == "token_unknown"  # purged: nothing left to say
    assert calls == []  # not one decryption for all of these
    assert sealed.open(flight, {SCOPE}).consent_id and calls == [1]


def test_withdrawal_and_replacement_delete_the_sealed_template(store, fake_clock):
    cid, token = enrol_sealed(store, fake_clock, "AAA111", unit(1))
    cid2, token2 = enrol_sealed(store, fake_clock, "AAA111", unit(2))  # same ref and flight
    rows = store.db.read("SELECT consent_id FROM templates")
    assert rows == [(cid2,)]  # the earlier enrolment was replaced, its sealed row deleted
    with pytest.raises(TokenError):
        SealedTemplates(store, fake_clock).open(token)
    assert store.withdraw(consent_id=cid2, actor="ann")
    assert store.db.read("SELECT count(*) FROM templates") == [(0,)]
    assert cid != cid2 and token != token2


def test_migration_4_adds_the_sealed_column_to_an_older_store(tmp_path, fake_clock,
                                                              monkeypatch):
    keys = tmp_path / "keys"
    write_key_file(keys / "store.key")
    write_key_file(keys / "ref.key")
    import edge.consent.database as database

    monkeypatch.setattr(database, "LATEST", 3)
    old = ConsentStore.open(tmp_path / "s.db", keys / "store.key", keys / "ref.key",
                            fake_clock, create=True)
    c = old.grant_consent("OLD001", "boarding", SCOPE, fake_clock.now() + HOUR, "ann")
    with old.db.write() as conn:
        conn.execute("INSERT INTO templates (consent_id, model_name, dim, created_at, "
                     "expires_at, embedding) VALUES (?, 'fr_feature', ?, ?, ?, ?)",
                     (c.consent_id, DIM, fake_clock.now(), fake_clock.now() + HOUR,
                      unit(1).astype("<f4").tobytes()))
    old.close()
    monkeypatch.setattr(database, "LATEST", schema.LATEST)
    new = ConsentStore.open(tmp_path / "s.db", keys / "store.key", keys / "ref.key", fake_clock)
    try:
        assert new.db.read("SELECT max(version) FROM schema_version") == [(schema.LATEST,)]
        assert new.db.read("SELECT sealed FROM templates") == [(0,)]
        assert len(new.active_templates()) == 1  # an old gallery template stays matchable
        with pytest.raises(CorruptStoreError), new.db.write() as conn:  # CHECK (sealed IN 0, 1)
            conn.execute("UPDATE templates SET sealed = 2")
    finally:
        new.close()
