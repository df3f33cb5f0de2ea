"""edge.vision.search (1:N protocol, FNIR/FPIR, DET) and the impostor calibration builder."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edge.vision import impostor_calibration as ic
from edge.vision import operating_point as op
from edge.vision import search


def _world(people: int = 40, photos: int = 4, noise: float = 0.5, seed: int = 0):
    """Identities p00..: unit identity directions plus noise; p03 has one failed photo."""
    rng = np.random.default_rng(seed)
    rows, vecs = [], {}
    for p in range(people):
        centre = rng.normal(size=64)
        for j in range(photos):
            f = f"images/p{p:02d}/{j}.jpg"
            rows.append((f, f"p{p:02d}"))
            v = centre / np.linalg.norm(centre) + noise * rng.normal(size=64) / 8
            vecs[f] = (v / np.linalg.norm(v)).astype(np.float32)
    vecs["images/p03/1.jpg"] = None
    return rows, search.Embeddings(vecs)


def test_protocol_even_enrolled_odd_nonmated():
    rows, emb = _world()
    for k in (1, 2):
        pr = search.build_protocol(rows, emb, k)
        assert sorted(pr.templates) == [f"p{p:02d}" for p in range(0, 40, 2)]
        assert len(pr.mated) == 20 * (4 - k) and len(pr.nonmated) == 20 * 4
        assert pr.failure_to_acquire == 1  # p03 is odd: a non-mated probe without a face
        for t in pr.templates.values():
            assert np.linalg.norm(t) == pytest.approx(1, abs=1e-5)
    fused = search.build_protocol(rows, emb, 1, probe_frames=2)
    assert len(fused.mated) == 20 and len(fused.nonmated) == 40


def test_failed_enrol_photo_is_skipped_and_counted_as_probe_miss():
    rows, emb = _world()
    emb.vectors["images/p02/0.jpg"] = None
    pr = search.build_protocol(rows, emb, 1)
    np.testing.assert_allclose(pr.templates["p02"], emb.vectors["images/p02/1.jpg"])
    out = search.run_searches(search.exhaustive_matcher(pr.templates), pr)
    i = [n for n, (ident, _) in enumerate(pr.mated) if ident == "p02"]
    assert not out.mated_correct[i[0]] and math.isinf(out.mated_score[i[0]])


def test_exhaustive_matcher_top2():
    t = {"a": np.array([1.0, 0, 0]), "b": np.array([0, 1.0, 0]), "c": np.array([0, 0, 1.0])}
    best, s, r = search.exhaustive_matcher(t)(np.array([0.8, 0.6, 0.0]))
    assert (best, s, r) == ("a", pytest.approx(0.8), pytest.approx(0.6))
    assert search.exhaustive_matcher({"a": t["a"]})(t["a"])[2] == -math.inf


def test_gallery_matcher_adapter():
    class R:
        consent_id, score, runner_up = "x", 0.7, -1.0

    class G:
        def match(self, probe):
            return R()

    assert search.gallery_matcher(G())(np.zeros(3)) == ("x", 0.7, -math.inf)


def test_rates_margin_and_evaluate_shape():
    rows, emb = _world()
    pr = search.build_protocol(rows, emb, 1)
    out = search.run_searches(search.exhaustive_matcher(pr.templates), pr)
    f0, n0 = search.rates_at(out, 0.3, 0.0)
    f1, n1 = search.rates_at(out, 0.3, 0.1)
    assert f1 <= f0 and n1 >= n0  # the margin only removes candidates
    fnir, t = search.fnir_at_fpir(out, 0.01, 0.0)
    assert search.rates_at(out, t, 0.0)[0] <= 0.01 and fnir == search.rates_at(out, t, 0.0)[1]
    fp, fn = search.det_curve(out, 0.05)
    assert np.all(np.diff(fp) <= 0) and np.all(np.diff(fn) >= 0)
    r = search.evaluate(out, pr, threshold=0.5, margin=0.05)
    assert set(r) == {"gallery", "mated", "nonmated", "failure_to_acquire", "rank1",
                      "fnir_at_fpir", "operating_point"}
    assert set(r["fnir_at_fpir"]) == {"0.001", "0.003", "0.01"}
    assert set(r["operating_point"]) == {"threshold", "fpir", "fnir"}
    assert 0.9 < r["rank1"] <= 1.0
    json.dumps(r)


def test_gpd_fit_recovers_parameters():
    rng = np.random.default_rng(1)
    xi, sigma = -0.2, 0.03
    u = rng.uniform(size=20000)
    y = sigma / xi * ((1 - u) ** (-xi) - 1)
    fx, fs = ic.fit_gpd(y)
    assert fx == pytest.approx(xi, abs=0.03) and fs == pytest.approx(sigma, rel=0.05)
    ex = rng.exponential(0.02, size=20000)
    fx, fs = ic.fit_gpd(ex)
    assert abs(fx) < 0.03 and fs == pytest.approx(0.02, rel=0.05)


def test_build_table_is_loadable_and_matches_empirical():
    rng = np.random.default_rng(2)
    scores = np.tanh(rng.normal(0, 0.1, size=2_000_000)).astype(np.float32)
    rows, tail = ic.build_table(scores, far_min=1e-6)
    doc = {"schema": op.SCHEMA, "embedder": "fr_feature", "embedder_sha256": "a" * 64,
           "score": {"similarity": "cosine", "mirror_average": True},
           "provenance": {"dataset": "normal", "images": 1, "failure_to_acquire": 0,
                          "identities": 1, "impostor_pairs": scores.size, "method": "t",
                          "date": "d", "tool": "t"}, "tail": tail, "table": rows}
    cal = op.parse_calibration(json.dumps(doc).encode())
    for far in (1e-2, 1e-4, 1e-5, 2e-6):
        t, _ = op.threshold_at_far(cal, far)
        assert np.mean(scores >= t) == pytest.approx(far, rel=0.35)
    assert {r["source"] for r in rows} == {"empirical", "tail"}


def test_impostor_scores_counts_only_different_pairs():
    v = np.eye(4, dtype=np.float32)
    s = ic.impostor_scores(v, np.array(["a", "a", "b", "c"]), block=3)
    assert s.size == 5  # 6 pairs minus the one a-a pair


def test_plot_det_needs_matplotlib(tmp_path):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="matplotlib"):
            search.plot_det({"x": (np.array([0.1]), np.array([0.1]))}, tmp_path / "d.png")
    else:
        search.plot_det({"x": (np.array([0.1, 0.01]), np.array([0.01, 0.1]))},
                        tmp_path / "d.png")
        assert (tmp_path / "d.png").stat().st_size > 0
