"""edge.vision.operating_point: strict loading of the impostor calibration (schema /1 and /2),
threshold maths, and the 1:N rule (search table, independence fallback)."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.vision import operating_point as op
from edge.vision import search_calibration as ic
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
SIZES = [1, 10, 100, 1000]
FPIRS = [1e-4, 1e-3, 1e-2, 1e-1]


def _doc2() -> dict:
    """Schema /2: the pair table and a 4x4 search table (thresholds a bit below the
    independence model's, as measured)."""
    doc = _doc()
    doc["schema"] = op.SCHEMA_V2
    doc["search"] = {
        "statistic": "top1_with_margin", "margin": 0.05, "enrol_images": 1, "fpir_safety": 0.8,
        "min_probes_eff": 20, "gallery_sizes": SIZES, "fpir": FPIRS,
        "thresholds": [[0.40, 0.35, 0.30, 0.25], [0.45, 0.40, 0.35, 0.30],
                       [0.50, 0.45, 0.40, 0.35], [0.55, 0.50, 0.45, 0.40]],
        "probes_eff": [[500, 900, 2000, 5000], [100, 400, 1500, 4000],
                       [10, 100, 600, 3000], [1, 30, 200, 1000]],
        "counts": {"identities": 5, "probe_images": 10, "template_draws": 1, "seed": 0},
        "method": "test",
    }
    return doc


CAL2 = _cal(_doc2())


def test_parse_valid():
    assert CAL.far_range == pytest.approx((1e-7, 1e-1))
    assert CAL.thresholds[0] == 0.2 and CAL.mirror_average and CAL.search is None
    table = CAL2.search
    assert table is not None and table.margin == 0.05 and table.gallery_sizes == (1, 10, 100, 1000)
    assert table.thresholds[2][1] == 0.45 and table.probes_eff[3][0] == 1


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(extra=1), "unexpected"),
    (lambda d: d.pop("tail"), "missing"),
    (lambda d: d.update(schema="impostor-calibration/3"), "schema"),
    (lambda d: d.update(schema="impostor-calibration/2"), "missing"),  # /2 needs `search`
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


def _search_mutations() -> list:
    def s(d):
        return d["search"]
    return [
        (lambda d: s(d).update(extra=1), "unexpected"),
        (lambda d: s(d).pop("counts"), "missing"),
        (lambda d: d.update(schema=op.SCHEMA), "unexpected"),  # /1 has no `search`
        (lambda d: s(d).update(statistic="top1"), "statistic"),
        (lambda d: s(d).update(margin=-0.1), "outside"),
        (lambda d: s(d).update(margin=True), "must be a number"),
        (lambda d: s(d).update(enrol_images=0), "integer"),
        (lambda d: s(d).update(fpir_safety=0.0), "outside"),
        (lambda d: s(d).update(fpir_safety=1.5), "outside"),
        (lambda d: s(d).update(min_probes_eff=0), "integer"),
        (lambda d: s(d).update(gallery_sizes=[1, 100, 10, 1000]), "increase"),
        (lambda d: s(d).update(gallery_sizes=[1, 10, 100, 1000.5]), "integer"),
        (lambda d: s(d).update(fpir=[1e-4, 1e-2, 1e-3, 1e-1]), "increase"),
        (lambda d: s(d).update(fpir=[0.0, 1e-3, 1e-2, 1e-1]), "outside"),
        (lambda d: s(d).update(gallery_sizes=[1]), "list of 2"),
        (lambda d: s(d).update(gallery_sizes=list(range(1, 40))), "list of 2"),
        (lambda d: s(d)["thresholds"].pop(), "rows of"),
        (lambda d: s(d)["thresholds"][1].pop(), "rows of"),
        (lambda d: s(d)["thresholds"][1].__setitem__(2, 0.5), "not increase"),
        (lambda d: s(d)["thresholds"].__setitem__(2, [0.44, 0.4, 0.35, 0.3]), "not decrease"),
        (lambda d: s(d)["thresholds"][2].__setitem__(0, float("inf")), "outside"),
        (lambda d: s(d)["probes_eff"][0].__setitem__(0, -1), "integer"),
        (lambda d: s(d)["probes_eff"][0].__setitem__(0, 1.5), "integer"),
        (lambda d: s(d)["counts"].update(seed="x"), "integer"),
        (lambda d: s(d).update(method=""), "description"),
    ]


@pytest.mark.parametrize("mutate, words", _search_mutations())
def test_parse_refuses_bad_search_tables(mutate, words):
    doc = copy.deepcopy(_doc2())
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


# ------------------------------------------------------------------ the 1:N rule (search table)
def test_search_table_is_read_at_the_safety_scaled_fpir_log_bilinearly():
    pt = op.operating_point_for(CAL2, 1e-3 / 0.8, 10, 0.05)  # reads FPIR 1e-3 exactly
    assert pt.method == op.METHOD_SEARCH and pt.in_range and pt.note == ""
    assert pt.threshold == pytest.approx(0.40)
    assert pt.pair_far == pytest.approx(op.far_at(CAL2, 0.40))
    mid = op.operating_point_for(CAL2, math.sqrt(1e-3 * 1e-2) / 0.8, 31, 0.05)
    u = math.log(31 / 10) / math.log(10)
    assert mid.threshold == pytest.approx((1 - u) * 0.375 + u * 0.425)  # log N, log FPIR
    assert op.operating_point_for(CAL2, 1e-3 / 0.8, 1, 0.05).threshold == pytest.approx(0.35)


def test_sparse_cells_are_flagged_extrapolated():
    assert not op.operating_point_for(CAL2, 1e-2 / 0.8, 100, 0.05).extrapolated
    assert op.operating_point_for(CAL2, 1e-4 / 0.8, 100, 0.05).extrapolated  # 10 < 20 probes
    assert op.operating_point_for(CAL2, 1e-4 / 0.8, 500, 0.05).extrapolated


@pytest.mark.parametrize("cal, margin, words", [
    (CAL, 0.05, "no 1:N table"),
    (CAL2, 0.03, "not the 1:N table's"),
    (CAL2, None, "no margin"),
])
def test_falls_back_to_the_independence_model(cal, margin, words):
    pt = op.operating_point_for(cal, 0.003, 200, margin)
    assert pt.method == op.METHOD_INDEPENDENCE and words in pt.note
    assert pt == replace(op.threshold_for(cal, 0.003, 200), note=pt.note)
    assert pt.in_range


def test_outside_the_grid_is_the_independence_model_flagged_and_never_below_the_edge():
    big = op.operating_point_for(CAL2, 0.003, 5000, 0.05)
    assert big.method == op.METHOD_INDEPENDENCE and not big.in_range and "outside" in big.note
    edge = op.operating_point_for(CAL2, 0.003, 1000, 0.05)
    assert edge.in_range and big.threshold >= edge.threshold
    assert big.threshold == max(op.threshold_for(CAL2, 0.003, 5000).threshold, edge.threshold)
    tiny = op.operating_point_for(CAL2, 1e-5, 10, 0.05)  # reads FPIR 8e-6 < 1e-4
    assert not tiny.in_range and tiny.threshold >= 0.45
    rule = op.FpirRule(CAL2, 0.003, 0.05)
    assert rule.uses_search_table and rule.calibrated_sizes == (1, 1000)
    assert rule(0).gallery_size == 1
    off = op.FpirRule(CAL2, 0.003, 0.02)
    assert not off.uses_search_table and off.calibrated_sizes == CAL2_PAIR_SIZES


CAL2_PAIR_SIZES = op.FpirRule(CAL, 0.003).calibrated_sizes


@given(n1=st.integers(1, 10**6), n2=st.integers(1, 10**6),
       fpir=st.floats(1e-6, 0.5, allow_nan=False))
def test_rule_monotone_in_gallery_size(n1, n2, fpir):
    a, b = sorted((n1, n2))
    assert (op.operating_point_for(CAL2, fpir, a, 0.05).threshold
            <= op.operating_point_for(CAL2, fpir, b, 0.05).threshold + 1e-12)


@given(f1=st.floats(1e-7, 0.9, allow_nan=False), f2=st.floats(1e-7, 0.9, allow_nan=False),
       n=st.integers(1, 10**5))
def test_rule_monotone_in_fpir(f1, f2, n):
    lo, hi = sorted((f1, f2))
    assert (op.operating_point_for(CAL2, lo, n, 0.05).threshold + 1e-12
            >= op.operating_point_for(CAL2, hi, n, 0.05).threshold)


def _labelled_unit_vectors(rng: np.random.Generator, n_id: int, dim: int, noise: float
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(labels, unit vectors): 1-3 noisy samples around each of `n_id` random identities."""
    labels = np.repeat(np.arange(n_id), rng.integers(1, 4, n_id))
    v = rng.standard_normal((n_id, dim))[labels] + noise * rng.standard_normal((labels.size, dim))
    return labels, (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_built_search_table_matches_simulated_galleries():
    """The exact average over galleries equals brute-force random galleries (margin rule)."""
    rng = np.random.default_rng(0)
    n_id, dim = 60, 16
    codes, v = _labelled_unit_vectors(rng, n_id, dim, noise=0.8)
    rows, ids = ic.draw_templates(codes, n_id, rng)
    assert (ids == np.arange(n_id)).all() and (codes[rows[:, 0]] == ids).all()
    templates = ic.template_vectors(v, rows)
    sizes, margin, ts = (1, 5, 20), 0.05, (0.3, 0.5)
    hist = ic.search_histograms(v, codes, templates, ids, sizes, margin)
    for j, n in enumerate(sizes):
        hits, total = np.zeros(len(ts)), 0
        for _ in range(1500):
            gallery = rng.choice(n_id, n, replace=False)
            probes = np.flatnonzero(~np.isin(codes, gallery))
            s = np.sort(v[probes] @ templates[gallery].T, axis=1)
            top = s[:, -1]
            ok = top - (s[:, -2] if n > 1 else -np.inf) >= margin
            hits += [np.sum(ok & (top >= t)) for t in ts]
            total += probes.size
        exact = [hist[j][round((t + 1) / ic.BIN):].sum() / v.shape[0] for t in ts]
        assert hits / total == pytest.approx(exact, rel=0.08, abs=2e-3)


def test_build_search_table_is_loadable_monotone_and_honours_the_target():
    rng = np.random.default_rng(3)
    n_id, dim = 120, 24
    labels, v = _labelled_unit_vectors(rng, n_id, dim, noise=0.9)
    sec = ic.build_search_table(v, labels.astype(str), draws=2, seed=1,
                                sizes=(1, 2, 5, 10, 20, 50, 100), fpirs=(0.01, 0.1))
    assert sec["gallery_sizes"] == [1, 2, 5, 10, 20, 50]  # at most half the identities
    doc = _doc2()
    doc["search"] = sec
    table = _cal(doc).search
    assert table is not None and table.counts["template_draws"] == 2
    codes = np.unique(labels, return_inverse=True)[1]
    rows, ids = ic.draw_templates(codes, n_id, np.random.default_rng(1))  # the first draw
    thr = np.array(sec["thresholds"])
    rates = ic.per_probe_rates(v, codes, ic.template_vectors(v, rows), ids,
                               sec["gallery_sizes"], 0.05, thr)
    assert (rates.mean(axis=1) <= np.array(sec["fpir"]) * 1.6).all()  # one of two draws


def test_mean_of_k_templates_only_for_identities_with_k_images():
    """K=2 tables: identities with one image are probes only (no template of their own)."""
    rng = np.random.default_rng(4)
    n_id, dim = 50, 8
    codes = np.repeat(np.arange(n_id), rng.integers(1, 4, n_id))
    v = rng.standard_normal((n_id, dim))[codes] + rng.standard_normal((codes.size, dim))
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    rows, ids = ic.draw_templates(codes, n_id, rng, enrol_images=2)
    assert (ids == np.flatnonzero(np.bincount(codes) >= 2)).all()
    assert (codes[rows] == ids[:, None]).all() and (rows[:, 0] != rows[:, 1]).all()
    t = ic.template_vectors(v, rows)
    hist = ic.search_histograms(v, codes, t, ids, (1, 4), 0.05)
    other = codes[:, None] != ids[None, :]  # non-mated (probe, template) pairs
    hits = ((v @ t.T >= 0.4) & other).sum(axis=1)
    pair_rate = (hits / other.sum(axis=1)).mean()  # N=1: a random template of another id
    assert hist[0][round(1.4 / ic.BIN):].sum() / v.shape[0] == pytest.approx(pair_rate, rel=1e-3)


def test_shipped_calibration_loads_for_installed_embedder():
    spec = load_manifest().get("fr_feature")
    cal = op.load_calibration(SHIPPED, embedder_sha256=spec.sha256)
    assert cal.mirror_average and cal.far_range[0] <= 1.1e-7 and cal.far_range[1] >= 1e-2
    assert cal.provenance["impostor_pairs"] > 10**7
    for n in (50, 200, 1000):
        point = op.threshold_for(cal, 0.003, n)
        assert point.in_range and 0.2 < point.threshold < 0.8
    table = cal.search
    assert table is not None and table.margin == 0.05 and table.fpir_safety == 0.8
    assert table.enrol_images == 1 and table.counts["probe_images"] == 7701
    assert table.gallery_sizes[0] == 1 and table.gallery_sizes[-1] >= 2000
    for n in (10, 192, 786, 2000):
        point = op.operating_point_for(cal, 0.003, n, 0.05)
        assert point.method == op.METHOD_SEARCH and point.in_range and not point.extrapolated
        assert 0.3 < point.threshold < 0.7
    for n in (10, 192, 786):  # as measured: close to the independence model at 0.8 x target
        t = op.operating_point_for(cal, 0.003, n, 0.05).threshold
        assert abs(t - op.threshold_for(cal, 0.0024, n).threshold) < 0.015
