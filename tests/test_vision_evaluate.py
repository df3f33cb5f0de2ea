"""Verification metrics and the LFW pairs reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.vision.evaluate import (
    auc,
    best_accuracy_threshold,
    lfw_protocol,
    read_lfw_pairs,
    tar_at_far,
    threshold_at_far,
)


def test_auc_perfect_random_and_ties():
    assert auc(np.array([0.9, 0.8]), np.array([0.1, 0.2])) == 1.0
    assert auc(np.array([0.1]), np.array([0.9])) == 0.0
    assert auc(np.array([0.5]), np.array([0.5])) == 0.5
    rng = np.random.default_rng(0)
    assert abs(auc(rng.normal(size=4000), rng.normal(size=4000)) - 0.5) < 0.03


def test_tar_at_far_counts_allowed_false_accepts():
    impostor = np.linspace(0, 0.999, 1000)  # 1000 impostors
    t = threshold_at_far(impostor, 1e-3)
    assert np.sum(impostor >= t) == 1
    tar, t2 = tar_at_far(np.array([0.9985, 0.5, 1.0]), impostor, 1e-3)
    assert t2 == t and tar == pytest.approx(2 / 3)
    assert np.sum(impostor >= threshold_at_far(impostor, 0.0)) == 0


def test_best_accuracy_threshold_separates():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    same = np.array([False, False, False, True, True])
    t, acc = best_accuracy_threshold(scores, same)
    assert acc == 1.0 and 0.3 < t <= 0.7


def test_lfw_pairs_and_protocol(tmp_path: Path):
    lines = ["2\t2"]
    for _fold in range(2):
        lines += ["A\t1\t2", "B\t1\t3", "A\t1\tB\t2", "C\t4\tD\t1"]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    pairs = read_lfw_pairs(tmp_path / "pairs.txt")
    assert len(pairs) == 8 and pairs[0].a == "images/A/A_0001.jpg" and pairs[0].same
    assert pairs[2].b == "images/B/B_0002.jpg" and not pairs[2].same
    assert [p.fold for p in pairs] == [0] * 4 + [1] * 4
    scores = np.array([0.9, 0.8, 0.1, 0.2] * 2)
    result = lfw_protocol(scores, np.array([p.same for p in pairs]),
                          np.array([p.fold for p in pairs]))
    assert result["accuracy_mean"] == 1.0 and result["accuracy_std"] == 0.0


def test_lfw_pairs_count_mismatch(tmp_path: Path):
    (tmp_path / "pairs.txt").write_text("10\t300\nA\t1\t2\n")
    with pytest.raises(ValueError, match="expected 6000"):
        read_lfw_pairs(tmp_path / "pairs.txt")
