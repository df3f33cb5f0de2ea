"""One consent per booking reference and flight (issue 14): enrolling the same reference again
for the same scope replaces the earlier consent (its templates deleted, the consent left as an
unlinkable tombstone, audited `consent_replaced`) in the enrolment's own transaction, so two
people can no longer be enrolled under one reference; other flights, other references and a
failed enrolment leave the earlier consent as it was."""

from __future__ import annotations

import numpy as np
import pytest

from edge.consent.errors import InvalidEmbeddingError
from edge.consent.gallery import Gallery

DIM = 512
FLIGHT = "XY0123/015"


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def _enrol(store, clock, reference, scope, vec):
    c = store.grant_consent(reference, "boarding", scope, clock.now() + 3600, "agent1")
    store.enrol(c.consent_id, [vec], "fr_feature", "agent1")
    return c


def _audit(store):
    return store.db.read("SELECT event, subject, reason FROM audit ORDER BY seq")


def test_enrolling_a_reference_again_for_the_flight_replaces_the_earlier_consent(
        store, fake_clock) -> None:
    gallery = Gallery(store, fake_clock, 0.414, 0.05)
    try:
        first = _enrol(store, fake_clock, "ABC123", FLIGHT, _unit(1))
        assert gallery.match(_unit(1)).consent_id == first.consent_id
        second = _enrol(store, fake_clock, "abc 123", FLIGHT, _unit(2))  # same reference
        # only the second person's template is left, and the gallery forgot the first at once
        assert [t.consent_id for t in store.active_templates()] == [second.consent_id]
        assert gallery.match(_unit(1)).consent_id is None
        assert gallery.match(_unit(2)).consent_id == second.consent_id
        rows = {r["consent_id"]: r for r in store.consent_summary()}
        assert rows[first.consent_id]["status"] == "withdrawn"
        assert rows[first.consent_id]["templates"] == 0
        assert ("consent_replaced", first.consent_id, f"by={second.consent_id}") in _audit(store)
        # the earlier receipt's code no longer reaches anything; the reference reaches the new
        assert store.withdraw(withdrawal_code=first.withdrawal_code, actor="t") is False
        assert store.withdraw(reference="ABC123", actor="t") is True
        assert store.active_templates() == []
    finally:
        gallery.close()


def test_other_flights_and_other_references_are_left_alone(store, fake_clock) -> None:
    a = _enrol(store, fake_clock, "ABC123", FLIGHT, _unit(1))
    b = _enrol(store, fake_clock, "ABC123", "ZZ0456/015", _unit(2))  # another flight
    c = _enrol(store, fake_clock, "XYZ789", FLIGHT, _unit(3))  # another reference
    assert {t.consent_id for t in store.active_templates()} == {a.consent_id, b.consent_id,
                                                                c.consent_id}
    assert not any(row[0] == "consent_replaced" for row in _audit(store))


def test_a_failed_enrolment_replaces_nothing(store, fake_clock) -> None:
    first = _enrol(store, fake_clock, "ABC123", FLIGHT, _unit(1))
    again = store.grant_consent("ABC123", "boarding", FLIGHT, fake_clock.now() + 3600, "t")
    with pytest.raises(InvalidEmbeddingError):  # another embedder's size: refused whole
        store.enrol(again.consent_id, [np.ones(128, np.float32)], "other", "t")
    assert [t.consent_id for t in store.active_templates()] == [first.consent_id]
    assert not any(row[0] == "consent_replaced" for row in _audit(store))
    store.enrol(again.consent_id, [_unit(2)], "fr_feature", "t")  # now it replaces
    assert [t.consent_id for t in store.active_templates()] == [again.consent_id]


def test_re_enrolling_the_same_consent_keeps_it(store, fake_clock) -> None:
    first = _enrol(store, fake_clock, "ABC123", FLIGHT, _unit(1))
    store.enrol(first.consent_id, [_unit(2), _unit(3)], "fr_feature", "t")  # new photos
    assert [t.consent_id for t in store.active_templates()] == [first.consent_id]
    assert not any(row[0] == "consent_replaced" for row in _audit(store))
