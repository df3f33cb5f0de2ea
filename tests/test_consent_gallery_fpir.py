"""The gallery's 1:N threshold follows the FPIR rule for the live gallery size (issue 14)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from edge.consent.gallery import Gallery
from edge.vision import operating_point as op
from edge.vision.manifest import load_manifest

DIM = 512


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _enrol(store, clock, n, rng, prefix="REF"):
    vecs = []
    for i in range(n):
        v = _unit(rng.standard_normal(DIM))
        c = store.grant_consent(f"{prefix}{i}", "boarding", "XY1 2027-01-15", clock.now() + 3600,
                                "t")
        store.enrol(c.consent_id, [v], "fr_feature", "t")
        vecs.append(v)
    return vecs


def _probe_at(v: np.ndarray, cosine: float, rng) -> np.ndarray:
    """A unit probe whose cosine with unit `v` is exactly `cosine`."""
    w = rng.standard_normal(DIM)
    w -= (w @ v) * v
    w /= np.linalg.norm(w)
    return _unit(cosine * v + np.sqrt(1 - cosine ** 2) * w)


def test_the_pinned_calibration_loads_and_is_for_the_installed_embedder():
    rule = op.fpir_rule("fr_feature", 0.003, 0.05)
    assert rule.calibration.embedder == "fr_feature" and rule.calibration.mirror_average
    small, large = rule(10).threshold, rule(1000).threshold
    assert 0.3 < small < large < 0.7
    lo, hi = rule.calibrated_sizes
    assert lo <= 10 and hi >= 1000
    assert rule.uses_search_table and rule(200).method == op.METHOD_SEARCH


def test_a_margin_other_than_the_tables_uses_the_independence_model():
    table = op.fpir_rule("fr_feature", 0.003, 0.05)
    other = op.fpir_rule("fr_feature", 0.003, 0.02)
    unknown = op.fpir_rule("fr_feature", 0.003)
    for rule in (other, unknown):
        point = rule(200)
        assert point.method == op.METHOD_INDEPENDENCE and point.note and point.in_range
        assert point.threshold == op.threshold_for(rule.calibration, 0.003, 200).threshold
    assert table(200).threshold <= other(200).threshold + 0.01


def test_a_tampered_calibration_is_refused(tmp_path):
    spec = load_manifest().calibration("fr_feature")
    raw = spec.path.read_bytes().replace(b'"far": 0.1,', b'"far": 0.2,', 1)
    bad = tmp_path / "cal.json"
    bad.write_bytes(raw)
    with pytest.raises(op.CalibrationError):
        op.load_calibration(bad, expected_sha256=spec.sha256)
    assert hashlib.sha256(raw).hexdigest() != spec.sha256


def test_threshold_rises_with_the_live_gallery(store, fake_clock):
    rng = np.random.default_rng(1)
    rule = op.fpir_rule("fr_feature", 0.003, 0.05)
    vecs = _enrol(store, fake_clock, 3, rng)
    gallery = Gallery(store, fake_clock, 0.414, 0.05, rule=rule)
    t3 = rule(3).threshold
    probe = _probe_at(vecs[0], t3 + 0.01, rng)
    assert gallery.match(probe).matched
    assert gallery.current_operating_point is not None
    assert gallery.current_operating_point.gallery_size == 3
    _enrol(store, fake_clock, 400, rng, "MORE")  # other references (one consent each)
    t403 = rule(403).threshold
    assert t403 > t3 + 0.02
    result = gallery.match(probe)  # the same score no longer clears the stricter threshold
    assert not result.matched and result.reason == "below_threshold"
    assert gallery.match(_probe_at(vecs[0], t403 + 0.02, rng)).matched
    gallery.close()


def test_expired_templates_do_not_count_towards_the_gallery_size(store, fake_clock):
    rng = np.random.default_rng(2)
    rule = op.fpir_rule("fr_feature", 0.003, 0.05)
    _enrol(store, fake_clock, 50, rng)
    gallery = Gallery(store, fake_clock, 0.414, 0.05, rule=rule)
    assert gallery.operating_point().gallery_size == 50
    fake_clock.advance(7200)
    assert gallery.operating_point().gallery_size <= 1
    gallery.close()


def test_averaged_templates_weigh_more_in_the_fpir_rule(store, fake_clock):
    """A template averaged from several images scores higher against strangers, so the rule
    reads the threshold at a larger effective gallery (MEAN_TEMPLATE_WEIGHT each)."""
    from edge.consent.gallery import MEAN_TEMPLATE_WEIGHT

    rng = np.random.default_rng(5)
    rule = op.fpir_rule("fr_feature", 0.003)
    for i in range(10):
        c = store.grant_consent(f"AVG{i}", "boarding", "XY1/015", fake_clock.now() + 3600, "t")
        store.enrol(c.consent_id, [_unit(rng.standard_normal(DIM)) for _ in range(2)],
                    "fr_feature", "t")
    gallery = Gallery(store, fake_clock, 0.414, 0.05, rule=rule)
    assert gallery.size == 10
    assert gallery.effective_size == int(np.ceil(10 * MEAN_TEMPLATE_WEIGHT))
    assert gallery.operating_point().gallery_size == gallery.effective_size
    gallery.close()
