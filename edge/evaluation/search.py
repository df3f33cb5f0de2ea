"""`faces search`: the 1:N flight-gallery evaluation, measured through the product's own path.

People are sorted by identity name; the even-indexed people with at least K+1 photos are
enrolled from their first K photos through the kiosk's enrolment code (`enrolment_embedding`:
quality gate, mirror-averaged embedding) into a real SQCipher consent store in a temporary
folder (fresh keys, deleted afterwards), one consent each, `strategy="mean"`, exactly as the
kiosk stores them. Their remaining photos are mated searches; every photo of the odd-indexed
people is a non-mated search. Every search goes through the daemon's `Gallery` with its FPIR
rule and margin: its answer is the operating point. A second gallery over the same store with
the threshold and margin open records each search's best consent and runner-up, from which the
DET curve (FNIR at FPIR 0.001, 0.003, 0.01, with the same margin rule) is drawn, as NIST does.
A photo with no face is a failure to acquire (a miss when mated, a correct reject when not); a
person none of whose K photos pass the kiosk's quality gate is a failure to enrol.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from edge.consent.gallery import Gallery
from edge.consent.keys import write_key_file
from edge.consent.store import ConsentStore
from edge.kiosk.photo import enrolment_embedding
from edge.vision import search as maths
from edge.vision.clilog import cli_logging
from edge.vision.engine import FaceEngine
from edge.vision.errors import ImageDecodeError
from edge.vision.imageio import load_image
from edge.vision.operating_point import fpir_rule
from foundation.clock import SystemClock
from foundation.errors import ConsentGateError
from foundation.settings import Settings, load_settings

SCOPE = "EVAL 1:N"


class SearchSetError(ConsentGateError):
    """The identities CSV or the folder cannot be used for a search evaluation."""


def _probe(engine: FaceEngine, path: Path) -> np.ndarray | None:
    try:
        image = load_image(path)
    except (ImageDecodeError, OSError):
        return None
    faces = engine.detect(image)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.box[2] * f.box[3])
    embedding: np.ndarray = np.asarray(engine.embed(image, [face]), np.float32)[0]
    return embedding


def _enrol(engine: FaceEngine, settings: Settings, store: ConsentStore, files: list[Path],
           k: int) -> tuple[str | None, list[Path]]:
    """Enrol from the first K photos that pass the kiosk's gate; (consent id, used photos)."""
    vectors: list[np.ndarray] = []
    used: list[Path] = []
    for path in files:
        if len(vectors) == k:
            break
        try:
            vectors.append(enrolment_embedding(engine, load_image(path),
                                               settings.vision.min_face_px))
            used.append(path)
        except (ConsentGateError, OSError):
            continue
    if len(vectors) < k:
        return None, []
    consent = store.grant_consent(f"EVAL{len(store.consent_summary())}", "boarding", SCOPE,
                                  SystemClock().now() + 12 * 3600, "evaluation")
    store.enrol(consent.consent_id, vectors, engine.embedder_name, "evaluation",
                strategy="mean")
    return consent.consent_id, used


def evaluate_folder(engine: FaceEngine, settings: Settings, folder: Path, identities: Path,
                    k: int, *, progress: bool = True) -> tuple[dict[str, object], maths.Outcome]:
    """Run the protocol; returns the report and the per-search outcome (for the DET plot)."""
    try:
        rows = maths.read_rows(identities)
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise SearchSetError(f"{identities}: not a CSV with columns file,identity ({exc})") \
            from None
    people = maths.people(rows)
    if len(people) < 2:
        raise SearchSetError(f"{identities}: a search evaluation needs at least two people")
    clock = SystemClock()
    mated_correct: list[bool] = []
    mated_score: list[float] = []
    mated_runner: list[float] = []
    non_score: list[float] = []
    non_runner: list[float] = []
    op_fn = op_fp = 0
    fta = fte = 0
    with tempfile.TemporaryDirectory(prefix="consentgate-search-") as tmp:
        keys = Path(tmp)
        write_key_file(keys / "store.key")
        write_key_file(keys / "ref.key")
        store = ConsentStore.open(keys / "eval.db", keys / "store.key", keys / "ref.key", clock,
                                  create=True)
        try:
            identity_of: dict[str, str] = {}
            mated: list[tuple[str, Path]] = []
            nonmated: list[Path] = []
            for idx, (ident, files) in enumerate(people.items()):
                paths = [folder / f for f in files]
                if idx % 2 == 1:
                    nonmated += paths
                    continue
                if len(paths) < k + 1:
                    continue
                consent_id, used = _enrol(engine, settings, store, paths, k)
                if consent_id is None:
                    fte += 1
                    continue
                identity_of[consent_id] = ident
                mated += [(ident, p) for p in paths if p not in used]
            rule = fpir_rule(engine.embedder_name, settings.consent.target_fpir,
                             settings.consent.match_margin)
            product = Gallery(store, clock, settings.vision.match_threshold,
                              settings.consent.match_margin, rule=rule)
            open_ = Gallery(store, clock, -0.999, 0.0)
            searches: list[tuple[str | None, Path]] = [*mated, *((None, p) for p in nonmated)]
            with Progress(transient=True, disable=not progress) as bar:
                task = bar.add_task("searching", total=len(searches))
                best: str | None
                decided: str | None
                for truth, path in searches:
                    bar.advance(task)
                    probe = _probe(engine, path)
                    if probe is None:
                        fta += 1
                        best, score, runner = None, maths.NO_SCORE, maths.NO_SCORE
                        decided = None
                    else:
                        r = open_.match(probe)
                        best = identity_of.get(r.consent_id or "")
                        score = r.score
                        runner = r.runner_up if r.runner_up > -1.0 else maths.NO_SCORE
                        hit = product.match(probe)
                        decided = identity_of.get(hit.consent_id or "")
                        probe.fill(0.0)  # as at the gate: compared, then dropped
                    if truth is not None:
                        mated_correct.append(best == truth)
                        mated_score.append(score)
                        mated_runner.append(runner)
                        op_fn += decided != truth
                    else:
                        non_score.append(score)
                        non_runner.append(runner)
                        op_fp += decided is not None
            point = product.operating_point()
            product.close()
            open_.close()
        finally:
            store.close()
    outcome = maths.Outcome(np.array(mated_correct, bool), np.array(mated_score),
                            np.array(mated_runner), np.array(non_score), np.array(non_runner))
    margin = settings.consent.match_margin
    n_mated, n_non = len(mated_score), len(non_score)
    report = {
        "gallery": len(identity_of), "mated": n_mated, "nonmated": n_non,
        "failure_to_acquire": fta, "failure_to_enrol": fte,
        "rank1": round(float(np.mean(outcome.mated_correct)) if n_mated else 0.0, 5),
        "fnir_at_fpir": {str(p): round(maths.fnir_at_fpir(outcome, p, margin)[0], 5)
                         for p in maths.FPIR_POINTS},
        "operating_point": {
            "threshold": round(point.threshold, 5) if point else None,
            "target_fpir": settings.consent.target_fpir,
            "in_range": point.in_range if point else None,
            "fpir": round(op_fp / n_non, 5) if n_non else 0.0,
            "fnir": round(op_fn / n_mated, 5) if n_mated else 0.0,
        },
        "enrol_images": k, "margin": margin, "mirror_average": settings.vision.mirror_average,
        "detector": engine.detector_name, "embedder": engine.embedder_name,
    }
    return report, outcome


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.enrol_images <= 3:
        raise SearchSetError("--enrol-images takes 1, 2 or 3 (the kiosk enrols up to 3 photos)")
    if not args.folder.is_dir():
        raise SearchSetError(f"{args.folder} is not a folder: pass the folder the CSV's "
                             "paths are relative to")
    settings = load_settings(args.config)
    with cli_logging(args.verbose, settings.logging.json_logs):
        engine = FaceEngine.from_settings(settings.vision, detector=args.detector)
        report, outcome = evaluate_folder(engine, settings, args.folder, args.identities,
                                          args.enrol_images, progress=sys.stderr.isatty())
    if args.plot is not None:
        fpir, fnir = maths.det_curve(outcome, settings.consent.match_margin)
        maths.plot_det({f"{report['detector']}, K={args.enrol_images}": (fpir, fnir)},
                       args.plot, title=f"DET, 1:N, gallery of {report['gallery']}")
    if args.json:
        print(json.dumps(report))
        return 0
    table = Table("metric", "value", title=f"faces search {args.folder} "
                                           f"(K={args.enrol_images})")
    for key, value in report.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    Console().print(table)
    return 0
