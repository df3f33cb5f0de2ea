"""Build models/<embedder>.impostor.json: the pair FAR table and the empirical 1:N table.

Input: a labelled face set, embedded in memory (`edge.vision.search.embed_dataset`; no
embedding is written to disk).
Every different-identity pair of acquired images is scored (mirror-averaged embeddings when
asked, as the product does). The table holds rates from `far_max` down to `far_min` in
`per_decade` log steps:

* empirical rows where at least `min_exceedances` impostor pairs reach the threshold (the
  (k+1)-th highest score for FAR k/P, the same rule as `edge.vision.evaluate.threshold_at_far`);
* below that, rows from a generalised Pareto distribution (GPD) fitted by maximum likelihood
  (Zhang-Stephens profile over theta = xi/sigma, numpy only) to the exceedances over the score
  at FAR `far_u`: FAR(t) = far_u * (1 + xi (t-u)/sigma)^(-1/xi), inverted for each rate.

The 1:N `search` table (schema /2, `build_search_table`) is the FRVT-style empirical calibration
of the max-of-N statistic with the product's margin rule: for each gallery size N of a grid (up
to half the identities) and each FPIR of a grid (1e-4 .. 1e-1), the threshold t with

    P(top score >= t and top - runner-up >= margin) = FPIR

for a non-mated search of a random gallery of N distinct identities (one template each: a
random acquired image of the identity, mirror-averaged as enrolled) by an image of an identity
not in it. The average over galleries is computed exactly, not sampled: for a probe whose
scores against the templates of the M other identities are x_1 > x_2 > ... , the gallery's best
is x_a and no other gallery template lies within the margin of it with probability
C(M - b_a, N - 1) / C(M, N), b_a = #{r: x_r > x_a - margin} (at least a). These weights are
summed over every acquired image as the probe into a score histogram (bins of 5e-5) per N, and
pooled over `draws` random template draws; thresholds are bin edges rounded up. The table is made
monotone (never lower for a larger N). Each cell records the number of probe images it
effectively rests on, (sum f_i)^2 / sum f_i^2 of the probes' own rates f_i (cells under
`min_probes_eff` are flagged, `extrapolated`, by the rule). The rule reads the table at
fpir_safety x target. 0.8 because tables built on one half of the LFW identities and read at
0.003 gave an expected FPIR of 0.0019 and 0.0033 on the other half (mean over random
galleries of ~190 people with >= 3 photos); at 0.8 x 0.003, 0.0018 and 0.0028.

    python -m edge.vision.impostor_calibration DIR IDENTITIES.csv OUT.json [--margin M]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
from pathlib import Path
from typing import TypedDict, Unpack

import numpy as np

from edge.vision.manifest import load_manifest
from edge.vision.operating_point import SCHEMA, SCHEMA_V2, parse_calibration
from edge.vision.search import EmbeddedSet, embed_folder
from edge.vision.search_calibration import SearchOptions, build_search_table


class TableRow(TypedDict):
    threshold: float
    far: float
    source: str  # "empirical" or "tail"


class Tail(TypedDict):
    """The fitted tail as the calibration file records it."""

    model: str
    threshold_u: float
    far_u: float
    shape_xi: float
    scale_sigma: float
    exceedances: int
    empirical_floor_far: float


class TableOptions(TypedDict, total=False):
    """The keyword options of `build_table`."""

    far_max: float
    far_min: float
    per_decade: int
    far_u: float
    min_exceedances: int


def impostor_scores(vectors: np.ndarray, labels: np.ndarray, block: int = 1024) -> np.ndarray:
    """float32 cosine scores of all pairs i<j with different labels (vectors unit length)."""
    v = np.ascontiguousarray(vectors, np.float32)
    lab = np.asarray(labels)
    out = []
    for s in range(0, v.shape[0], block):
        g = v[s:s + block] @ v.T
        rows = np.arange(s, min(s + block, v.shape[0]))
        upper = np.arange(v.shape[0])[None, :] > rows[:, None]
        diff = lab[rows][:, None] != lab[None, :]
        out.append(g[upper & diff].astype(np.float32))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def fit_gpd(excess: np.ndarray, grid: int = 4000) -> tuple[float, float]:
    """(xi, sigma) maximum-likelihood GPD fit to positive excesses (profile over theta)."""
    y = np.asarray(excess, np.float64)
    y = y[y > 0]
    if y.size < 20:
        raise ValueError("need at least 20 exceedances to fit a tail")
    ymax = float(y.max())
    # theta < 0 gives a bounded tail (xi < 0), theta > 0 a heavy one; theta > -1/ymax.
    lo, hi = -1.0 / ymax * (1 - 1e-6), 50.0 / float(np.mean(y))
    thetas = np.concatenate([np.linspace(lo, 0, grid, endpoint=False)[1:],
                             np.geomspace(1e-9, hi, grid)])
    best = (-math.inf, 0.0, float(np.mean(y)))
    for th in thetas:
        xi = float(np.mean(np.log1p(th * y)))
        if xi == 0 or th == 0:
            continue
        sigma = xi / th
        if sigma <= 0:
            continue
        ll = -y.size * (math.log(sigma) + 1 + xi)
        if ll > best[0]:
            best = (ll, xi, sigma)
    # exponential limit (xi -> 0)
    sigma0 = float(np.mean(y))
    ll0 = -y.size * (math.log(sigma0) + 1)
    if ll0 >= best[0]:
        return 0.0, sigma0
    return best[1], best[2]


def gpd_threshold(u: float, far_u: float, xi: float, sigma: float, far: float) -> float:
    """Score t with far_u * S_gpd(t - u) = far."""
    r = far / far_u
    if xi == 0:
        return u - sigma * math.log(r)
    power: float = r ** (-xi)
    return u + sigma / xi * (power - 1)


def gpd_far(u: float, far_u: float, xi: float, sigma: float, t: float) -> float:
    z = 1 + xi * (t - u) / sigma
    if z <= 0:
        return 0.0
    survival: float = math.exp(-(t - u) / sigma) if xi == 0 else z ** (-1 / xi)
    return far_u * survival


def empirical_threshold(sorted_desc: np.ndarray, far: float) -> float:
    """Smallest t with fraction(score >= t) <= far (next float above the k-th score)."""
    k = math.floor(far * sorted_desc.size + 1e-9)
    return float(np.nextafter(sorted_desc[min(k, sorted_desc.size - 1)], np.float32(np.inf)))


def build_table(scores: np.ndarray, *, far_max: float = 1e-1, far_min: float = 1e-7,
                per_decade: int = 4, far_u: float = 1e-4,
                min_exceedances: int = 300) -> tuple[list[TableRow], Tail]:
    """(table rows, tail description) for an impostor score sample."""
    s = np.sort(np.asarray(scores, np.float32))[::-1]
    p = s.size
    floor = min_exceedances / p
    u = float(s[int(far_u * p)])
    exc = s[: int(far_u * p)].astype(np.float64) - u
    xi, sigma = fit_gpd(exc)
    decades = math.log10(far_max / far_min)
    n = round(decades * per_decade) + 1
    rows: list[TableRow] = []
    for i in range(n):
        far = float(f"{far_max * 10 ** (-i / per_decade):.3g}")
        if far >= floor:
            t, src = empirical_threshold(s, far), "empirical"
        else:
            t, src = gpd_threshold(u, far_u, xi, sigma, far), "tail"
        if rows and t <= rows[-1]["threshold"]:
            t = rows[-1]["threshold"] + 1e-5
        rows.append({"threshold": round(t, 5), "far": far, "source": src})
    tail: Tail = {"model": "generalised_pareto", "threshold_u": round(u, 6), "far_u": far_u,
                  "shape_xi": round(xi, 6), "scale_sigma": round(sigma, 6),
                  "exceedances": int(exc.size), "empirical_floor_far": float(f"{floor:.4g}")}
    return rows, tail


def labelled_vectors(embedded: EmbeddedSet, identities: Path, mirror: bool
                     ) -> tuple[np.ndarray, np.ndarray, int, list[str]]:
    """(vectors, labels, failures, files) of the acquired images of an embedded set."""
    with open(identities, newline="") as fh:
        ident = {r["file"]: r["identity"] for r in csv.DictReader(fh)}
    files = embedded.files
    ok = embedded.ok.astype(bool)
    e = embedded.emb.astype(np.float32)
    if mirror:
        e = e + embedded.mirror.astype(np.float32)
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    keep = [i for i, f in enumerate(files) if ok[i] and f in ident]
    return e[keep], np.array([ident[files[i]] for i in keep]), int((~ok).sum()), \
        [files[i] for i in keep]


def build_calibration(vectors: np.ndarray, labels: np.ndarray, *, dataset: str,
                      failures: int, mirror: bool, embedder: str = "fr_feature",
                      date: str | None = None, search: SearchOptions | None = None,
                      **table_kw: Unpack[TableOptions]) -> dict[str, object]:
    """The calibration document: schema /2 with the 1:N table unless `search` is None."""
    scores = impostor_scores(vectors, labels)
    rows, tail = build_table(scores, **table_kw)
    spec = load_manifest().get(embedder)
    extra = {} if search is None else {"search": build_search_table(vectors, labels, **search)}
    return {
        "schema": SCHEMA if search is None else SCHEMA_V2, "embedder": embedder,
        "embedder_sha256": spec.sha256,
        "score": {"similarity": "cosine", "mirror_average": mirror},
        "provenance": {
            "dataset": dataset, "images": int(vectors.shape[0]) + failures,
            "failure_to_acquire": failures, "identities": len(set(labels.tolist())),
            "impostor_pairs": int(scores.size),
            "method": ("all different-identity pairs of acquired images (largest face, "
                       "detector ultraface_landmark68, 5-point alignment"
                       + (", embedding = normalise(e(crop) + e(mirrored crop))" if mirror else "")
                       + "); empirical rows where >= "
                       f"{round(tail['empirical_floor_far'] * scores.size)} pairs exceed, "
                       f"GPD (ML) tail fitted to exceedances over the FAR {tail['far_u']} "
                       "score below that; FAR = P(impostor score >= threshold)"),
            "date": date or dt.date.today().isoformat(),
            "tool": "python -m edge.vision.impostor_calibration",
        },
        "tail": tail, "table": rows, **extra,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, help="the folder the CSV's paths are relative to")
    ap.add_argument("identities", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--dataset", default="LFW deep-funneled, 7701 images of pairs.txt")
    ap.add_argument("--no-mirror", action="store_true")
    ap.add_argument("--margin", type=float, default=0.05,
                    help="the gallery's margin rule (settings consent.match_margin)")
    ap.add_argument("--draws", type=int, default=8, help="random template draws pooled")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--fpir-safety", type=float, default=0.8)
    ap.add_argument("--enrol-images", type=int, default=1,
                    help="photos averaged into each gallery template (as the kiosk enrols)")
    ap.add_argument("--pairs-only", action="store_true", help="schema /1: no 1:N table")
    args = ap.parse_args(argv)
    with open(args.identities, newline="") as fh:
        files = [r["file"] for r in csv.DictReader(fh)]
    v, lab, fails, _ = labelled_vectors(embed_folder(args.folder, files), args.identities,
                                        not args.no_mirror)
    search: SearchOptions | None = None if args.pairs_only else {
        "margin": args.margin, "draws": args.draws, "seed": args.seed,
        "fpir_safety": args.fpir_safety, "enrol_images": args.enrol_images}
    cal = build_calibration(v, lab, dataset=args.dataset, failures=fails,
                            mirror=not args.no_mirror, search=search, date=None)
    text = json.dumps(cal, indent=1) + "\n"
    parse_calibration(text.encode())  # never write a file the loader would refuse
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
