"""1:N gallery-search evaluation in the field's terms (NIST FRVT/IFPC style): FNIR, FPIR, DET.

Protocol on a labelled set (identities CSV `file,identity`):

* people sorted by identity name; even-indexed people (0, 2, 4, ...) with at least K+1 photos
  are enrolled from their first K acquired photos (file order): the template is the mean of the
  (mirror-averaged) embeddings, renormalised;
* their remaining photos are mated searches; every photo of the odd-indexed people is a
  non-mated search;
* a photo where no face is acquired is a failure to acquire: a miss for a mated search, a
  (correct) non-match for a non-mated one; both are counted in the denominators.

A search returns a candidate when the top score reaches the threshold and beats the best score
of any other consent by the margin. FNIR(T): mated searches without the right candidate;
FPIR(T): non-mated searches with any candidate. The matcher is pluggable: any callable
probe -> (best consent, score, runner-up score of another consent), so the product's Gallery
(`gallery_matcher`) can replace the exhaustive numpy one.

    python -m edge.vision.search DIR IDENTITIES.csv --k 1 [--det det.png]

(embeds DIR in memory with the default engine; the product's own path is `python -m edge faces
search`, through the kiosk's enrolment code and the daemon's gallery).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.vision.evaluate import threshold_at_far

if typing.TYPE_CHECKING:
    from edge.vision.engine import FaceEngine

Matcher = Callable[[np.ndarray], tuple[str | None, float, float]]
FPIR_POINTS = (0.001, 0.003, 0.01)
NO_SCORE = -math.inf


class BestMatch(typing.Protocol):
    """A gallery's answer to one search (the shape of edge.consent.gallery.MatchResult, which
    the vision room cannot import: the consent room imports this one)."""

    @property
    def consent_id(self) -> str | None: ...
    @property
    def score(self) -> float: ...
    @property
    def runner_up(self) -> float: ...


class GalleryLike(typing.Protocol):
    def match(self, probe: np.ndarray) -> BestMatch: ...


# ----------------------------------------------------------------------------- embeddings
@dataclass(frozen=True)
class EmbeddedSet:
    """The embeddings of a labelled evaluation set, in memory only (never written to disk:
    an embedding of anyone, even a public test set's, stays in the process that made it)."""

    files: list[str]
    emb: np.ndarray        # (n, 512) embedding of the aligned crop of the largest face
    mirror: np.ndarray     # (n, 512) embedding of the mirrored crop
    ok: np.ndarray         # (n,) bool: a face was acquired
    nfaces: np.ndarray     # (n,) faces found, -1: unreadable


def embed_dataset(engine: FaceEngine, root: Path, files: Sequence[str],
                  progress: Callable[[int, int], None] | None = None) -> EmbeddedSet:
    """Embed the largest face of each image and its mirrored aligned crop, in memory."""
    from edge.vision.align import align_face
    from edge.vision.errors import ImageDecodeError
    from edge.vision.imageio import load_image

    zero = np.zeros(512, np.float32)
    emb: list[np.ndarray] = []
    mirror: list[np.ndarray] = []
    ok: list[bool] = []
    nfaces: list[int] = []

    def add(e: np.ndarray, m: np.ndarray, acquired: bool, found: int) -> None:
        emb.append(e)
        mirror.append(m)
        ok.append(acquired)
        nfaces.append(found)

    for n, f in enumerate(files):
        if progress is not None:
            progress(n, len(files))
        try:
            image = load_image(root / f)
        except ImageDecodeError:
            add(zero, zero, False, -1)
            continue
        faces = engine.detect(image)
        if not faces:
            add(zero, zero, False, 0)
            continue
        face = max(faces, key=lambda fc: fc.box[2] * fc.box[3])
        crop = align_face(image, face)
        e = engine._embedder.embed_crops([crop, np.ascontiguousarray(crop[:, ::-1])])
        add(e[0], e[1], True, len(faces))
    shape = (0, 512)
    return EmbeddedSet(list(files), np.stack(emb) if emb else np.zeros(shape, np.float32),
                       np.stack(mirror) if mirror else np.zeros(shape, np.float32),
                       np.array(ok, bool), np.array(nfaces, int))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / max(float(np.linalg.norm(v)), 1e-12)


@dataclass(frozen=True)
class Embeddings:
    """Per-file vectors of acquired images (None = failure to acquire)."""

    vectors: dict[str, np.ndarray | None]

    @classmethod
    def from_set(cls, embedded: EmbeddedSet, *, mirror: bool = True,
                 center: np.ndarray | None = None) -> Embeddings:
        out: dict[str, np.ndarray | None] = {}
        for f, e, m, ok in zip(embedded.files, embedded.emb, embedded.mirror, embedded.ok,
                               strict=True):
            if not ok:
                out[str(f)] = None
                continue
            v = (e + m) if mirror else e
            v = _unit(v)
            if center is not None:
                v = _unit(v - center)
            out[str(f)] = v
        return cls(out)


# ------------------------------------------------------------------------------- protocol
@dataclass(frozen=True)
class Protocol:
    templates: dict[str, np.ndarray]          # identity -> unit template
    mated: list[tuple[str, np.ndarray | None]]  # (true identity, probe or None)
    nonmated: list[np.ndarray | None]
    failure_to_acquire: int                   # probes without a face (mated + non-mated)
    failure_to_enrol: int                     # eligible people with < K acquired photos


def people(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """identity -> its files in file order, identities sorted by name."""
    by: dict[str, list[str]] = {}
    for f, ident in rows:
        by.setdefault(ident, []).append(f)
    return {k: sorted(by[k]) for k in sorted(by)}


def build_protocol(rows: Iterable[tuple[str, str]], emb: Embeddings, k: int = 1,
                   probe_frames: int = 1, min_photos: int | None = None) -> Protocol:
    """The even/odd protocol above; `probe_frames` > 1 fuses that many consecutive photos of
    one person into one probe (mean, renormalised), simulating several frames of a search;
    `min_photos` (default K+1) lets K=1 and K=2 runs enrol the same people."""
    if k < 1 or probe_frames < 1:
        raise ValueError("k and probe_frames must be >= 1")
    templates: dict[str, np.ndarray] = {}
    mated: list[tuple[str, np.ndarray | None]] = []
    nonmated: list[np.ndarray | None] = []
    fta = fte = 0

    def fuse(files: list[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for s in range(0, len(files) - probe_frames + 1, probe_frames):
            vs = [v for f in files[s:s + probe_frames] if (v := emb.vectors.get(f)) is not None]
            out.append(_unit(np.mean(vs, axis=0)) if vs else None)
        return out

    for idx, (ident, files) in enumerate(people(rows).items()):
        if idx % 2 == 1:
            probes = fuse(files)
            fta += sum(p is None for p in probes)
            nonmated.extend(probes)
            continue
        if len(files) < max(k + 1, min_photos or 0):
            continue
        acquired = [(f, v) for f in files if (v := emb.vectors.get(f)) is not None]
        if len(acquired) < k:
            fte += 1
            continue
        enrol = [f for f, _ in acquired[:k]]
        templates[ident] = _unit(np.mean([v for _, v in acquired[:k]], axis=0))
        rest = [f for f in files if f not in enrol]
        probes = fuse(rest)
        fta += sum(p is None for p in probes)
        mated.extend((ident, p) for p in probes)
    return Protocol(templates, mated, nonmated, fta, fte)


# ------------------------------------------------------------------------------- matchers
def exhaustive_matcher(templates: dict[str, np.ndarray]) -> Matcher:
    """Top-1 consent, its score and the best score of another consent (one template each)."""
    ids = list(templates)
    matrix = np.stack([templates[i] for i in ids]).astype(np.float32)

    def match(probe: np.ndarray) -> tuple[str | None, float, float]:
        s = matrix @ np.asarray(probe, np.float32)
        if s.size == 1:
            return ids[0], float(s[0]), NO_SCORE
        top2 = np.argpartition(-s, 1)[:2]
        a, b = (top2 if s[top2[0]] >= s[top2[1]] else top2[::-1])
        return ids[int(a)], float(s[a]), float(s[b])

    return match


def gallery_matcher(gallery: GalleryLike) -> Matcher:
    """Adapter for edge.consent.gallery.Gallery (build it with threshold just above -1 and
    margin 0 so every search reports its best consent)."""
    def match(probe: np.ndarray) -> tuple[str | None, float, float]:
        r = gallery.match(probe)
        runner = r.runner_up if r.runner_up > -1.0 else NO_SCORE
        return r.consent_id, float(r.score), float(runner)

    return match


# -------------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class Outcome:
    """Per-search results: mated (correct top-1?, score, runner-up), non-mated (score, r-up)."""

    mated_correct: np.ndarray
    mated_score: np.ndarray
    mated_runner: np.ndarray
    non_score: np.ndarray
    non_runner: np.ndarray


def run_searches(matcher: Matcher, protocol: Protocol) -> Outcome:
    mc: list[bool] = []
    ms: list[float] = []
    mr: list[float] = []
    ns: list[float] = []
    nr: list[float] = []
    for ident, probe in protocol.mated:
        if probe is None:
            mc.append(False)
            ms.append(NO_SCORE)
            mr.append(NO_SCORE)
            continue
        best, score, runner = matcher(probe)
        mc.append(best == ident)
        ms.append(score)
        mr.append(runner)
    for probe in protocol.nonmated:
        if probe is None:
            ns.append(NO_SCORE)
            nr.append(NO_SCORE)
            continue
        _, score, runner = matcher(probe)
        ns.append(score)
        nr.append(runner)
    return Outcome(np.array(mc, bool), np.array(ms), np.array(mr), np.array(ns), np.array(nr))


def effective_scores(o: Outcome, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores a threshold is compared with: -inf where the margin rule (or a wrong top-1 for
    mated searches) already rules out the right candidate / any candidate."""
    with np.errstate(invalid="ignore"):  # -inf - -inf (no face) is nan: not a candidate
        m_ok = o.mated_correct & (o.mated_score - o.mated_runner >= margin)
        n_ok = o.non_score - o.non_runner >= margin
    return np.where(m_ok, o.mated_score, NO_SCORE), np.where(n_ok, o.non_score, NO_SCORE)


def rates_at(o: Outcome, threshold: float, margin: float) -> tuple[float, float]:
    """(FPIR, FNIR) at a threshold and margin."""
    m, n = effective_scores(o, margin)
    return float(np.mean(n >= threshold)), float(np.mean(~(m >= threshold)))


def fnir_at_fpir(o: Outcome, fpir: float, margin: float) -> tuple[float, float]:
    """(FNIR, threshold) on the DET curve at an FPIR."""
    m, n = effective_scores(o, margin)
    t = max(threshold_at_far(n, fpir), -1.0)
    return float(np.mean(~(m >= t))), t


def det_curve(o: Outcome, margin: float, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(FPIR, FNIR) over thresholds spanning the non-mated scores."""
    m, n = effective_scores(o, margin)
    finite = n[np.isfinite(n)]
    ts = np.unique(np.quantile(finite, np.linspace(0, 1, points))) if finite.size else \
        np.array([0.0])
    fpir = np.array([np.mean(n >= t) for t in ts])
    fnir = np.array([np.mean(~(m >= t)) for t in ts])
    return fpir, fnir


def evaluate(o: Outcome, protocol: Protocol, *, threshold: float,
             margin: float) -> dict[str, object]:
    """The report: gallery size, counts, rank1, FNIR at FPIR points, the operating point."""
    fpir, fnir = rates_at(o, threshold, margin)
    return {
        "gallery": len(protocol.templates), "mated": len(protocol.mated),
        "nonmated": len(protocol.nonmated), "failure_to_acquire": protocol.failure_to_acquire,
        "rank1": round(float(np.mean(o.mated_correct)), 5),
        "fnir_at_fpir": {str(p): round(fnir_at_fpir(o, p, margin)[0], 5) for p in FPIR_POINTS},
        "operating_point": {"threshold": round(threshold, 5), "fpir": round(fpir, 5),
                            "fnir": round(fnir, 5)},
    }


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path,
             title: str = "DET") -> None:
    """Log-log DET plot (FNIR against FPIR) of labelled curves; needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("matplotlib is not installed in this environment; "
                           "pip install matplotlib to draw DET curves") from None
    fig, ax = plt.subplots(figsize=(6, 5))
    for label, (fpir, fnir) in curves.items():
        ax.plot(np.clip(fpir, 1e-5, 1), np.clip(fnir, 1e-4, 1), label=label)
    ax.set(xscale="log", yscale="log", xlabel="FPIR", ylabel="FNIR", title=title)
    ax.axvline(0.003, ls=":", c="grey")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def read_rows(identities: Path) -> list[tuple[str, str]]:
    with open(identities, newline="") as fh:
        return [(r["file"], r["identity"]) for r in csv.DictReader(fh)]


def embed_folder(folder: Path, files: Sequence[str]) -> EmbeddedSet:
    """`embed_dataset` with the default settings' engine, progress on stderr."""
    import sys

    from edge.vision.engine import FaceEngine
    from foundation.settings import Settings

    engine = FaceEngine.from_settings(Settings().vision)

    def progress(n: int, total: int) -> None:
        if n % 250 == 0:
            print(f"embedding {n}/{total}", file=sys.stderr, flush=True)

    return embed_dataset(engine, folder, files, progress)


def main(argv: list[str] | None = None) -> int:
    from edge.vision.operating_point import load_calibration, operating_point_for

    ap = argparse.ArgumentParser(description="1:N search evaluation (FNIR/FPIR, DET)")
    ap.add_argument("folder", type=Path, help="the folder the CSV's paths are relative to")
    ap.add_argument("identities", type=Path)
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--target-fpir", type=float, default=0.003)
    ap.add_argument("--calibration", type=Path,
                    default=Path(__file__).resolve().parents[2] / "models" /
                    "fr_feature.impostor.json")
    ap.add_argument("--no-mirror", action="store_true")
    ap.add_argument("--det", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = read_rows(args.identities)
    embedded = embed_folder(args.folder, [f for f, _ in rows])
    emb = Embeddings.from_set(embedded, mirror=not args.no_mirror)
    proto = build_protocol(rows, emb, args.k)
    out = run_searches(exhaustive_matcher(proto.templates), proto)
    op = operating_point_for(load_calibration(args.calibration), args.target_fpir,
                             len(proto.templates), args.margin)
    print(json.dumps(evaluate(out, proto, threshold=op.threshold, margin=args.margin)))
    if args.det:
        plot_det({f"K={args.k}": det_curve(out, args.margin)}, args.det)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
