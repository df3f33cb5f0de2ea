"""Property tests of the retention arithmetic and of expiry as the store applies it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.consent import retention
from edge.consent.errors import ConsentRequiredError, InvalidConsentError
from edge.consent.gallery import Gallery
from edge.consent.keys import write_key_file
from edge.consent.store import ConsentStore
from foundation.clock import FakeClock

times = st.floats(min_value=1e9, max_value=4e9, allow_nan=False)
spans = st.floats(min_value=1.0, max_value=30 * 86400.0, allow_nan=False)
retentions = st.integers(min_value=60, max_value=7 * 86400)


@given(granted=times, span=spans, max_ret=retentions)
def test_consent_expiry_is_the_earlier_bound(granted, span, max_ret):
    requested = granted + span
    got = retention.consent_expiry(granted, requested, max_ret)
    assert got == min(requested, granted + max_ret)
    assert granted < got <= granted + max_ret
    assert got <= requested


@given(granted=times, back=st.floats(min_value=0.0, max_value=1e6, allow_nan=False),
       max_ret=retentions)
def test_consent_expiry_not_in_future_is_refused(granted, back, max_ret):
    with pytest.raises(InvalidConsentError):
        retention.consent_expiry(granted, granted - back, max_ret)


def test_non_finite_expiry_refused():
    for bad in (float("nan"), float("inf")):
        with pytest.raises(InvalidConsentError):
            retention.consent_expiry(1e9, bad, 3600)


@given(enrolled=times, consent_span=spans, max_ret=retentions,
       later=st.floats(min_value=0.0, max_value=40 * 86400.0, allow_nan=False))
def test_template_never_outlives_its_bounds(enrolled, consent_span, max_ret, later):
    consent_exp = enrolled + consent_span
    exp = retention.template_expiry(enrolled, consent_exp, max_ret)
    assert exp <= consent_exp and exp <= enrolled + max_ret
    assert exp in (consent_exp, enrolled + max_ret)
    now = enrolled + later
    assert retention.is_live(exp, now) == (now < consent_exp and now < enrolled + max_ret)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    write_key_file(d / "store.key")
    write_key_file(d / "ref.key")
    return d


@given(consent_span=st.integers(min_value=1, max_value=5 * 86400),
       max_ret=st.integers(min_value=60, max_value=2 * 86400),
       enrol_after=st.integers(min_value=0, max_value=3 * 86400),
       probe_at=st.integers(min_value=0, max_value=6 * 86400))
def test_store_and_gallery_apply_retention(tmp_path_factory, keys, consent_span, max_ret,
                                           enrol_after, probe_at):
    """Whatever the timings, a template matches exactly while now < min(consent expiry,
    enrolment + max retention), and purge removes it once that has passed."""
    clock = FakeClock()
    path = tmp_path_factory.mktemp("ret") / "store.db"
    store = ConsentStore.open(path, keys / "store.key", keys / "ref.key", clock,
                              max_retention_s=max_ret, create=True)
    try:
        t0 = clock.now()
        consent = store.grant_consent("ABC123", "boarding", "XY1 2027-01-15", t0 + consent_span,
                                      "ann")
        assert consent.expires_at == min(t0 + consent_span, t0 + max_ret)
        clock.advance(enrol_after)
        vec = np.ones(8, np.float32)
        if enrol_after >= consent.expires_at - t0:
            with pytest.raises(ConsentRequiredError):
                store.enrol(consent.consent_id, [vec], "fr_feature", "ann")
            return
        enrolment = store.enrol(consent.consent_id, [vec], "fr_feature", "ann")
        expected = min(consent.expires_at, clock.now() + max_ret)
        assert enrolment.expires_at == expected
        gallery = Gallery(store, clock, threshold=0.5, margin=0.05)
        clock.advance(probe_at)
        live = clock.now() < expected
        assert gallery.match(vec).reason == ("match" if live else "empty")
        assert gallery.verify(vec, consent.consent_id).reason == ("match" if live else "empty")
        assert len(store.active_templates()) == int(live)
        store.purge()
        assert store.stats()["templates"] == int(live)
        assert store.stats()["expired_unpurged"] == 0
    finally:
        store.close()
