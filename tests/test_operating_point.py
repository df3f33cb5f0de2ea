"""edge.vision.operating_point: strict loading of the impostor calibration, threshold maths."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.vision import operating_point as op
from edge.vision.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "fr_feature.impostor.json"
SHA = "0" * 64


def _doc(rows: list[tuple[float, float]] | None = None) -> dict:
    rows = rows or [(0.2 + 0.05 * i, 10 ** (-1 - i / 2)) for i in range(13)]  # 1e-1 .. 1e-7
    return {
        "schema": op.SCHEMA, "embedder": "fr_feature", "embedder_sha256": SHA,
        "score": {"similarity": "cosine", "mirror_average": True},
        "provenance": {"dataset": "synthetic", "images": 10, "failure_to_acquire": 0,
                       "identities": 5, "impostor_pairs": 40, "method": "test",
                       "date": "2026-01-01", "tool": "test"},
        "tail": {"model": "generalised_pareto", "threshold_u": 0.4, "far_u": 1e-4,
                 "shape_xi": -0.1, "scale_sigma": 0.03, "exceedances": 10,
                 "empirical_floor_far": 1e-5},
        "table": [{"threshold": t, "far": f, "source": "empirical" if f >= 1e-5 else "tail"}
                  for t, f in rows],
    }


def _cal(doc: dict | None = None) -> op.Calibration:
    return op.parse_calibration(json.dumps(doc or _doc()).encode())


CAL = _cal()


def test_parse_valid():
    assert CAL.far_range == pytest.approx((1e-7, 1e-1))
    assert CAL.thresholds[0] == 0.2 and CAL.mirror_average


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(extra=1), "unexpected"),
    (lambda d: d.pop("tail"), "missing"),
    (lambda d: d.update(schema="impostor-calibration/2"), "schema"),
    (lambda d: d.update(embedder_sha256="XYZ"), "64 lowercase hex"),
    (lambda d: d["table"].reverse(), "increase"),
    (lambda d: d["table"][3].update(far=float("nan")), "outside"),
    (lambda d: d["table"][3].update(threshold=1.5), "outside"),
    (lambda d: d["table"][3].update(threshold=True), "must be a number"),
    (lambda d: d["table"][3].update(source="guess"), "source"),
    (lambda d: d.update(table=d["table"][:1]), "rows"),
    (lambda d: d["provenance"].update(images=-1), "non-negative"),
    (lambda d: d["score"].update(similarity="euclidean"), "cosine"),
])
def test_parse_refuses(mutate, words):
    doc = copy.deepcopy(_doc())
    mutate(doc)
    with pytest.raises(op.CalibrationError, match=words):
        _cal(doc)


def test_parse_refuses_oversize_hash_and_embedder(tmp_path: Path):
    with pytest.raises(op.CalibrationError, match="larger"):
        op.parse_calibration(b" " * (op.MAX_FILE_BYTES + 1))
    raw = json.dumps(_doc()).encode()
    with pytest.raises(op.CalibrationError, match="pinned"):
        op.parse_calibration(raw, expected_sha256="1" * 64)
    assert op.parse_calibration(raw, expected_sha256=hashlib.sha256(raw).hexdigest())
    with pytest.raises(op.CalibrationError, match="installed"):
        op.parse_calibration(raw, embedder_sha256="f" * 64)
    with pytest.raises(op.CalibrationError, match="missing"):
        op.load_calibration(tmp_path / "none.json")
    with pytest.raises(op.CalibrationError, match="JSON"):
        op.parse_calibration(b"{not json")


def test_interpolation_is_log_linear_and_inverse():
    mid = (CAL.thresholds[2] + CAL.thresholds[3]) / 2
    assert op.far_at(CAL, mid) == pytest.approx(math.sqrt(CAL.fars[2] * CAL.fars[3]))
    for far in (3e-2, 1e-3, 4.2e-6, 2e-7):
        t, ok = op.threshold_at_far(CAL, far)
        assert ok and op.far_at(CAL, t) == pytest.approx(far, rel=1e-9)


def test_fpir_model_round_trip():
    far = op.pair_far_for(0.003, 200)
    assert far == pytest.approx(0.003 / 200, rel=2e-3)
    assert op.fpir_for(far, 200) == pytest.approx(0.003, rel=1e-9)
    assert op.gallery_size_for(0.003, far) == pytest.approx(200)


def test_flags_outside_range():
    small = op.threshold_for(CAL, 0.5, 1)       # needs FAR 0.5 > table's 0.1
    assert not small.in_range and small.threshold == CAL.thresholds[0]
    huge = op.threshold_for(CAL, 0.003, 10**7)  # needs FAR 3e-10 < 1e-7
    assert not huge.in_range and huge.extrapolated and huge.threshold == CAL.thresholds[-1]
    mid = op.threshold_for(CAL, 0.003, 200)
    assert mid.in_range and not mid.extrapolated
    lo, hi = CAL.gallery_range(0.003)
    assert lo < 1 < 200 < hi < 10**7
    with pytest.raises(ValueError):
        op.threshold_for(CAL, 0.0, 10)
    with pytest.raises(ValueError):
        op.threshold_for(CAL, 0.003, 0)


@given(n1=st.integers(1, 10**7), n2=st.integers(1, 10**7),
       fpir=st.floats(1e-6, 0.5, allow_nan=False))
def test_threshold_monotone_in_gallery_size(n1, n2, fpir):
    a, b = sorted((n1, n2))
    assert op.threshold_for(CAL, fpir, a).threshold <= op.threshold_for(CAL, fpir, b).threshold


@given(f1=st.floats(1e-7, 0.9, allow_nan=False), f2=st.floats(1e-7, 0.9, allow_nan=False),
       n=st.integers(1, 10**6))
def test_threshold_monotone_in_fpir(f1, f2, n):
    lo, hi = sorted((f1, f2))
    assert op.threshold_for(CAL, lo, n).threshold >= op.threshold_for(CAL, hi, n).threshold


@given(t=st.floats(-1, 1, allow_nan=False), n=st.integers(1, 10**5))
def test_predicted_fpir_is_a_probability_monotone_in_t(t, n):
    p = op.predicted_fpir(CAL, t, n)
    assert 0.0 <= p <= 1.0
    assert op.predicted_fpir(CAL, min(t + 0.01, 1.0), n) <= p


def test_shipped_calibration_loads_for_installed_embedder():
    spec = load_manifest().get("fr_feature")
    cal = op.load_calibration(SHIPPED, embedder_sha256=spec.sha256)
    assert cal.mirror_average and cal.far_range[0] <= 1.1e-7 and cal.far_range[1] >= 1e-2
    assert cal.provenance["impostor_pairs"] > 10**7
    for n in (50, 200, 1000):
        point = op.threshold_for(cal, 0.003, n)
        assert point.in_range and 0.2 < point.threshold < 0.8
