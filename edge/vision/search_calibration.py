"""The empirical 1:N search table of an impostor calibration: for gallery sizes N and FPIRs,
the threshold at which a non-mated search returns a candidate (top score >= t and top -
runner-up >= margin), averaged exactly over random galleries (see `build_search_table`).
Used by edge.vision.impostor_calibration, which writes the calibration file.
"""

from __future__ import annotations

import math
import typing
from typing import TypedDict

import numpy as np

# ------------------------------------------------------------------ the empirical 1:N table
SEARCH_SIZES = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500,
                2000, 3000, 5000, 7000, 10000)
SEARCH_FPIRS = tuple(float(f"{10 ** (-4 + i / 8):.3g}") for i in range(25))  # 1e-4 .. 1e-1
BIN = 5e-5          # score histogram resolution; thresholds are bin edges (rounded up)
MAX_GALLERY_SHARE = 0.5  # a gallery holds at most this share of the identities
MIN_PROBES_EFF = 20      # cells resting on fewer effective probe images are flagged sparse


class SearchOptions(TypedDict, total=False):
    """The keyword options of `build_search_table`."""

    margin: float
    sizes: tuple[int, ...]
    fpirs: tuple[float, ...]
    draws: int
    seed: int
    fpir_safety: float
    enrol_images: int


def draw_templates(codes: np.ndarray, n_identities: int, rng: np.random.Generator,
                   enrol_images: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(rows, identities): `enrol_images` distinct random acquired images (rows, shape (G, k))
    of every identity code 0..n-1 that has that many, and those G identity codes."""
    order = rng.permutation(codes.size)
    order = order[np.argsort(codes[order], kind="stable")]  # by identity, random within
    counts = np.bincount(codes, minlength=n_identities)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    eligible = np.flatnonzero(counts >= enrol_images)
    return order[starts[eligible][:, None] + np.arange(enrol_images)], eligible


def template_vectors(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The enrolled template of each row of `rows`: the renormalised mean of its images."""
    t = vectors[rows].astype(np.float64).mean(axis=1)
    return (t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _log_comb(lf: np.ndarray, n: np.ndarray | int, k: int) -> np.ndarray:
    n = np.asarray(n)
    return lf[n] - lf[k] - lf[np.maximum(n - k, 0)]


class _Block(typing.NamedTuple):
    rows: np.ndarray   # probe rows
    xs: np.ndarray     # (P, M) scores against the templates of every other identity, descending
    b: np.ndarray      # (P, M) #{r: x_r > x_a - margin}, at least a (1-based a = index + 1)
    flat: np.ndarray   # -xs row by row, rows offset by 4 apart, raveled (for searchsorted)
    off: np.ndarray    # (P, 1) the row offsets
    m_other: int       # M: templates of identities other than the probe's

    def reaching(self, t: np.ndarray) -> np.ndarray:
        """(P, len(t)): how many of each probe's scores reach each threshold t."""
        q = (-np.asarray(t, np.float64)[None, :] + self.off).ravel()
        k = np.searchsorted(self.flat, q, side="right").reshape(self.off.size, -1)
        return k - (np.arange(self.off.size) * self.m_other)[:, None]


def _ranked(vectors: np.ndarray, codes: np.ndarray, templates: np.ndarray,
            template_codes: np.ndarray, margin: float,
            block: int = 256) -> typing.Iterator[_Block]:
    """Every acquired image as a non-mated probe against the templates of all other
    identities, a block of probes at a time (probes whose identity has a template first).
    b[p, a] counts the templates that would beat the rank-a template or make it ambiguous
    (runner-up within the margin) if in the gallery."""
    t = np.ascontiguousarray(templates, np.float32)
    column = np.full(max(int(codes.max(initial=0)), int(template_codes.max(initial=0))) + 1, -1)
    column[template_codes] = np.arange(template_codes.size)
    own = column[codes]  # the probe's own identity's template, -1: none
    for probes, m_other in ((np.flatnonzero(own >= 0), t.shape[0] - 1),
                            (np.flatnonzero(own < 0), t.shape[0])):
        ranks = np.arange(1, m_other + 1)
        for s in range(0, probes.size, block):
            rows = probes[s:s + block]
            sc = vectors[rows] @ t.T
            if m_other < t.shape[0]:
                sc[np.arange(rows.size), own[rows]] = -np.inf  # own identity: a mated search
            asc = -np.sort(sc, axis=1)[:, ::-1][:, :m_other].astype(np.float64)  # -x ascending
            off = 4.0 * np.arange(rows.size)[:, None]  # rows kept apart (scores in [-1, 1])
            flat = (asc + off).ravel()
            cnt = np.searchsorted(flat, (asc + margin + off).ravel(), side="left")
            b = cnt.reshape(asc.shape) - (np.arange(rows.size) * m_other)[:, None]
            yield _Block(rows, -asc, np.maximum(b, ranks[None, :]), flat, off, m_other)


def _weights(lf: np.ndarray, b: np.ndarray, m_other: int, n: int) -> tuple[int, np.ndarray]:
    """(L, w): w[p, a] = P(a random gallery of n of the m_other identities has its best template
    at rank a and no other within the margin) = C(M - b, n-1) / C(M, n), for ranks a < L (the
    rest are below 1e-15)."""
    width = m_other if n < 2 else min(m_other, math.ceil(35 * m_other / (n - 1)) + 2)
    bb = b[:, :width]
    pool = m_other - bb
    ok = pool >= n - 1
    lw = _log_comb(lf, np.where(ok, pool, n - 1), n - 1) - _log_comb(lf, m_other, n)
    return width, np.where(ok, np.exp(lw), 0.0)


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])


def search_histograms(vectors: np.ndarray, codes: np.ndarray, templates: np.ndarray,
                      template_codes: np.ndarray, sizes: typing.Sequence[int],
                      margin: float) -> np.ndarray:
    """(len(sizes), bins) array: for each gallery size N, the expected number of non-mated
    searches (summed over every acquired image as the probe) whose best template scores in
    each bin and beats the runner-up by the margin, over all galleries of N of the templates'
    identities other than the probe's (exact average over galleries, for one template draw)."""
    n_bins = round(2 / BIN)
    lf = _log_factorials(templates.shape[0] + 1)
    hist = np.zeros((len(sizes), n_bins))
    for blk in _ranked(vectors, codes, templates, template_codes, margin):
        bins = np.clip(((blk.xs + 1.0) / BIN).astype(np.int64), 0, n_bins - 1)
        for j, n in enumerate(sizes):
            width, w = _weights(lf, blk.b, blk.m_other, n)
            hist[j] += np.bincount(bins[:, :width].ravel(), weights=w.ravel(),
                                   minlength=n_bins)
    return hist


def thresholds_from_histogram(hist: np.ndarray, searches: float,
                              fpirs: typing.Sequence[float]) -> np.ndarray:
    """Per row: for each FPIR the smallest bin edge t with P(top >= t, margin ok) <= FPIR."""
    tail = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1] / searches  # tail[k] = FPIR(edge k)
    out = np.empty((hist.shape[0], len(fpirs)))
    for j, f in enumerate(fpirs):
        k = np.argmax(tail <= f, axis=1)  # tail is non-increasing in k; tail[-1] ~ 0
        out[:, j] = -1.0 + k * BIN
    return out


def per_probe_rates(vectors: np.ndarray, codes: np.ndarray, templates: np.ndarray,
                    template_codes: np.ndarray, sizes: typing.Sequence[int], margin: float,
                    thresholds: np.ndarray) -> np.ndarray:
    """(len(sizes), probes, len(fpirs)): each probe's own FPIR at each cell's threshold (to see
    how many probe images a cell rests on)."""
    lf = _log_factorials(templates.shape[0] + 1)
    out = np.zeros((len(sizes), vectors.shape[0], thresholds.shape[1]))
    for blk in _ranked(vectors, codes, templates, template_codes, margin):
        p = np.arange(blk.rows.size)[:, None]
        for j, n in enumerate(sizes):
            width, w = _weights(lf, blk.b, blk.m_other, n)
            cum = np.concatenate([np.zeros((p.size, 1)), np.cumsum(w, axis=1)], axis=1)
            k = np.minimum(blk.reaching(thresholds[j]), width)
            out[j, blk.rows] = cum[p, k]
    return out


def effective_probes(rates: np.ndarray) -> np.ndarray:
    """(sum r)^2 / sum r^2 over probes: the number of equally contributing probe images."""
    num = rates.sum(axis=-2) ** 2
    den = (rates ** 2).sum(axis=-2)
    return np.where(den > 0, num / np.maximum(den, 1e-300), 0.0)


def build_search_table(vectors: np.ndarray, labels: np.ndarray, *, margin: float = 0.05,
                       sizes: tuple[int, ...] = SEARCH_SIZES,
                       fpirs: tuple[float, ...] = SEARCH_FPIRS, draws: int = 8, seed: int = 14,
                       fpir_safety: float = 0.8, enrol_images: int = 1) -> dict[str, object]:
    """The file's `search` section: thresholds t(N, FPIR) with P(top >= t and top - runner-up
    >= margin) = FPIR over random galleries of N identities (one mirror-averaged template
    each, the mean of `enrol_images` random images of the identity) and non-mated probes
    (every image of any identity not in the gallery), pooled over `draws` template draws."""
    names, codes = np.unique(np.asarray(labels), return_inverse=True)
    pool = int(np.sum(np.bincount(codes) >= enrol_images))
    use = tuple(n for n in sizes if n <= MAX_GALLERY_SHARE * pool)
    if len(use) < 2:
        raise ValueError(f"{pool} identities with {enrol_images} images are too few for a "
                         "1:N table")
    v = np.ascontiguousarray(vectors, np.float32)
    rng = np.random.default_rng(seed)
    hist = np.zeros((len(use), round(2 / BIN)))
    first: tuple[np.ndarray, np.ndarray] | None = None
    for _ in range(draws):
        rows, ids = draw_templates(codes, names.size, rng, enrol_images)
        tv = template_vectors(v, rows)
        first = first or (tv, ids)
        hist += search_histograms(v, codes, tv, ids, use, margin)
    thr = thresholds_from_histogram(hist, float(draws * v.shape[0]), fpirs)
    thr = np.maximum.accumulate(thr, axis=0)  # never lower for a larger gallery
    thr = np.ceil(np.round(thr * 1e5, 6)) / 1e5
    assert first is not None
    eff = effective_probes(per_probe_rates(v, codes, *first, use, margin, thr))
    return {
        "statistic": "top1_with_margin", "margin": margin, "enrol_images": enrol_images,
        "fpir_safety": fpir_safety, "min_probes_eff": MIN_PROBES_EFF,
        "gallery_sizes": list(use), "fpir": list(fpirs),
        "thresholds": [[float(x) for x in r] for r in thr],
        "probes_eff": [[int(x) for x in r] for r in np.floor(eff)],
        "counts": {"identities": int(pool), "probe_images": int(v.shape[0]),
                   "template_draws": draws, "seed": seed},
        "method": (f"exact average over all galleries of N of the {pool} identities with "
                   f">= {enrol_images} images (one template each: the renormalised mean of "
                   f"{enrol_images} random acquired image(s), pooled over {draws} template "
                   f"draws, seed {seed}) of P(top >= t and top - runner-up >= {margin:g}) "
                   "for every acquired image of another identity as a non-mated probe; N up "
                   f"to {MAX_GALLERY_SHARE:g} x those identities; thresholds on a {BIN:g} "
                   "grid rounded up, non-decreasing in N; the rule reads FPIR = fpir_safety "
                   "x target"),
    }
