"""Verification metrics and the evaluation protocols behind `faces eval` and `faces lfw`.

Pure numpy on similarity scores: ROC AUC, TAR at a FAR, the threshold for a FAR, and LFW's
10-fold protocol (threshold chosen on nine folds, accuracy on the tenth).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


def auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC curve = P(genuine score > impostor score), ties count half."""
    g = np.asarray(genuine, np.float64)
    i = np.asarray(impostor, np.float64)
    if g.size == 0 or i.size == 0:
        return float("nan")
    scores = np.concatenate([g, i])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(scores.size, np.float64)
    sorted_scores = scores[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[: g.size].sum() - g.size * (g.size + 1) / 2) / (g.size * i.size))


def threshold_at_far(impostor: np.ndarray, far: float) -> float:
    """Smallest threshold t with fraction(impostor >= t) <= far (matches need score >= t)."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    allowed = int(np.floor(far * imp.size + 1e-9))
    if allowed >= imp.size:
        return float(imp[-1])
    return float(np.nextafter(imp[allowed], np.inf))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the given FAR."""
    t = threshold_at_far(impostor, far)
    return float(np.mean(np.asarray(genuine) >= t)), t


def best_accuracy_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of `score >= threshold` == same."""
    order = np.argsort(scores)
    s, y = np.asarray(scores)[order], np.asarray(same, bool)[order]
    # Threshold just above s[k] accepts s[k+1:]; candidate k = -1 accepts all.
    pos_above = np.concatenate([[y.sum()], y.sum() - np.cumsum(y)])
    neg_below = np.concatenate([[0], np.cumsum(~y)])
    acc = (pos_above + neg_below) / y.size
    k = int(np.argmax(acc))
    if k == 0:
        return float(s[0]), float(acc[0])
    upper = s[k] if k < s.size else s[-1] + 1e-6
    return float((s[k - 1] + upper) / 2), float(acc[k])


@dataclass(frozen=True)
class LfwPair:
    fold: int
    a: str
    b: str
    same: bool


def read_lfw_pairs(path: Path) -> list[LfwPair]:
    """LFW's official pairs.txt: header `folds n`, then per fold n same and n different pairs."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; use LFW's pairs.txt") from None
    try:
        folds, per = (int(v) for v in lines[0].split())
    except ValueError:
        raise ValueError(f"{path}: the first line must be `FOLDS PAIRS_PER_FOLD` "
                         "(LFW's pairs.txt format)") from None
    pairs: list[LfwPair] = []
    rows = [ln.split() for ln in lines[1:] if ln.strip()]
    if len(rows) != folds * per * 2:
        raise ValueError(f"{path}: expected {folds * per * 2} pairs, found {len(rows)}")

    def img(name: str, num: str) -> str:
        return f"images/{name}/{name}_{int(num):04d}.jpg"

    for idx, r in enumerate(rows):
        fold = idx // (2 * per)
        if len(r) == 3:
            pairs.append(LfwPair(fold, img(r[0], r[1]), img(r[0], r[2]), True))
        elif len(r) == 4:
            pairs.append(LfwPair(fold, img(r[0], r[1]), img(r[2], r[3]), False))
        else:
            raise ValueError(f"{path}: bad pair line {' '.join(r)!r}")
    return pairs


def lfw_protocol(scores: np.ndarray, same: np.ndarray,
                 folds: np.ndarray) -> dict[str, object]:
    """10-fold accuracy (threshold from the other folds) and TAR at FAR 1e-3 over all pairs."""
    accs: list[float] = []
    thresholds: list[float] = []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        t, _ = best_accuracy_threshold(scores[train], same[train])
        accs.append(float(np.mean((scores[test] >= t) == same[test])))
        thresholds.append(t)
    tar, t3 = tar_at_far(scores[same], scores[~same], 1e-3)
    return {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "fold_accuracies": accs, "fold_thresholds": thresholds,
            "tar_at_far_1e-3": tar, "threshold_at_far_1e-3": t3,
            "auc": auc(scores[same], scores[~same]), "pairs": int(scores.size)}
