"""`python -m edge faces ...`: detect, compare, eval (a labelled folder) and lfw (10-fold).

Bad inputs (missing, empty, non-image files, photos without a face) give one line per file on
stderr and a non-zero exit; `--json` gives machine-readable output on stdout.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from edge.vision.clilog import cli_logging
from edge.vision.engine import DETECTORS, FaceEngine
from edge.vision.errors import ImageDecodeError, NoFaceError, VisionError
from edge.vision.evaluate import (
    auc,
    best_accuracy_threshold,
    lfw_protocol,
    read_lfw_pairs,
    tar_at_far,
)
from edge.vision.imageio import load_image
from edge.vision.types import Face
from foundation.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_subcommands(parser)


def add_subcommands(
        parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The common options and the vision room's own actions; returns the subparsers so a room
    above (edge.evaluation) can add actions that need the consent store."""
    parser.add_argument("--config", type=Path, default=None, help="settings TOML (default: "
                        "embedded defaults, models from $CONSENTGATE_MODEL_DIR)")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help="override vision.detector")
    parser.add_argument("--verbose", action="store_true", help="log engine events to stderr")
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("detect", help="faces in each image: box, score, 5 landmarks")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p = sub.add_parser("compare", help="similarity of the main face in two photos")
    p.add_argument("a", type=Path, metavar="A")
    p.add_argument("b", type=Path, metavar="B")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("eval", help="detection rate, AUC and TAR@FAR on a labelled folder")
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument("--identities", type=Path, required=True, metavar="CSV",
                   help="CSV with columns file,identity")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("lfw", help="LFW 10-fold verification protocol")
    p.add_argument("folder", type=Path, metavar="DIR", help="folder with pairs.txt and images/")
    p.add_argument("--json", action="store_true")
    return sub


def _fail(file: Path | str, reason: str) -> None:
    print(f"error: {file}: {reason}", file=sys.stderr)


def main_face(engine: FaceEngine, image: np.ndarray, name: str) -> Face:
    """The largest detected face; NoFaceError when there is none."""
    faces = engine.detect(image)
    if not faces:
        raise NoFaceError(f"{name}: no face found; use a photo with one clear, frontal face")
    return max(faces, key=lambda f: f.box[2] * f.box[3])


def _detect(engine: FaceEngine, args: argparse.Namespace) -> int:
    code = 0
    table = Table("file", "faces", "box x,y,w,h", "score")
    for path in args.images:
        try:
            image = load_image(path)
        except ImageDecodeError as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            _fail(path, reason)
            if args.json:
                print(json.dumps({"file": str(path), "error": reason}))
            code = 1
            continue
        faces = engine.detect(image)
        if not faces:
            _fail(path, "no face found")
            code = 1
        if args.json:
            print(json.dumps({"file": str(path), "faces": [f.to_json() for f in faces]}))
        for i, f in enumerate(faces):
            j = f.to_json()
            table.add_row(str(path) if i == 0 else "", str(len(faces)) if i == 0 else "",
                          ",".join(f"{v:.0f}" for v in j["box"]), f"{j['score']:.3f}")
    if not args.json and table.row_count:
        Console().print(table)
    return code


def _embed_file(engine: FaceEngine, path: Path) -> np.ndarray:
    image = load_image(path)
    face = main_face(engine, image, str(path))
    embedding: np.ndarray = engine.embed(image, [face])[0]
    return embedding


def _compare(engine: FaceEngine, args: argparse.Namespace) -> int:
    embeddings = []
    for path in (args.a, args.b):
        try:
            embeddings.append(_embed_file(engine, path))
        except (ImageDecodeError, NoFaceError) as exc:
            _fail(path, str(exc).removeprefix(f"{path}: "))
    if len(embeddings) != 2:
        return 1
    sim = engine.similarity(*embeddings)
    result = {"similarity": round(sim, 4), "threshold": engine.threshold,
              "match": sim >= engine.threshold}
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "same person" if result["match"] else "different people"
        print(f"similarity {sim:.4f} (threshold {engine.threshold}): {verdict}")
    return 0


def _read_identities(path: Path) -> list[tuple[str, str]]:
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"file", "identity"} <= set(reader.fieldnames):
                raise VisionError(f"{path}: needs a header with columns file,identity")
            rows = []
            for n, r in enumerate(reader, start=2):
                if not r["file"] or not r["identity"]:
                    raise VisionError(f"{path} line {n}: every row needs a file and an identity")
                rows.append((r["file"], r["identity"]))
            return rows
    except FileNotFoundError:
        raise VisionError(f"{path}: identities CSV not found") from None
    except IsADirectoryError:
        raise VisionError(f"{path}: is a folder; pass the identities CSV file") from None
    except OSError as exc:
        raise VisionError(f"{path}: cannot read the identities CSV ({exc.strerror})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise VisionError(f"{path}: not a readable CSV ({exc})") from None


def _embed_many(engine: FaceEngine, paths: list[Path],
                label: str) -> tuple[dict[Path, np.ndarray], list[str]]:
    out: dict[Path, np.ndarray] = {}
    missed: list[str] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=len(paths))
        for path in paths:
            try:
                out[path] = _embed_file(engine, path)
            except (ImageDecodeError, NoFaceError) as exc:
                missed.append(str(exc))
            progress.advance(task)
    return out, missed


def _eval(engine: FaceEngine, args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise VisionError(f"{args.folder}: folder not found")
    rows = _read_identities(args.identities)
    if not rows:
        raise VisionError(f"{args.identities}: no rows")
    paths = [args.folder / f for f, _ in rows]
    ident = {args.folder / f: i for f, i in rows}
    emb, missed = _embed_many(engine, paths, "embedding")
    for line in missed:
        print(f"error: {line}", file=sys.stderr)
    keys = list(emb)
    gen: list[float] = []
    imp: list[float] = []
    for a, b in itertools.combinations(keys, 2):
        (gen if ident[a] == ident[b] else imp).append(float(np.dot(emb[a], emb[b])))
    g, i = np.array(gen), np.array(imp)
    if g.size == 0 or i.size == 0:
        raise VisionError("need at least two people with two detected photos each")
    tar2, t2 = tar_at_far(g, i, 1e-2)
    tar3, t3 = tar_at_far(g, i, 1e-3)
    scores = np.concatenate([g, i])
    same = np.concatenate([np.ones(g.size, bool), np.zeros(i.size, bool)])
    t_acc, acc = best_accuracy_threshold(scores, same)
    thr = engine.threshold
    result = {
        "detector": engine.detector_name, "embedder": engine.embedder_name,
        "images": len(paths), "detected": len(emb),
        "detection_rate": round(len(emb) / len(paths), 4),
        "genuine_pairs": int(g.size), "impostor_pairs": int(i.size),
        "auc": round(auc(g, i), 6),
        "tar_at_far_1e-2": round(tar2, 4), "threshold_at_far_1e-2": round(t2, 4),
        "tar_at_far_1e-3": round(tar3, 4), "threshold_at_far_1e-3": round(t3, 4),
        "best_accuracy": round(acc, 4), "best_accuracy_threshold": round(t_acc, 4),
        "threshold": thr, "tar_at_threshold": round(float(np.mean(g >= thr)), 4),
        "far_at_threshold": round(float(np.mean(i >= thr)), 5),
        "genuine_min": round(float(g.min()), 4), "impostor_max": round(float(i.max()), 4),
    }
    _print_result(result, args.json, f"faces eval {args.folder}")
    return 1 if missed else 0


def _print_result(result: Mapping[str, object], as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(result))
        return
    table = Table("metric", "value", title=title)
    for k, v in result.items():
        if isinstance(v, list):
            v = " ".join(f"{x:.4f}" for x in v)
        table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    Console().print(table)


def _lfw(engine: FaceEngine, args: argparse.Namespace) -> int:
    pairs_file = args.folder / "pairs.txt"
    if not pairs_file.is_file():
        raise VisionError(f"{pairs_file} not found: pass the LFW folder holding pairs.txt")
    try:
        pairs = read_lfw_pairs(pairs_file)
    except ValueError as exc:
        raise VisionError(str(exc)) from None
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    emb, missed = _embed_many(engine, [args.folder / f for f in files], "LFW images")
    scores = np.array([float(np.dot(emb[args.folder / p.a], emb[args.folder / p.b]))
                       if (args.folder / p.a in emb and args.folder / p.b in emb) else -1.0
                       for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    result = {"detector": engine.detector_name, "embedder": engine.embedder_name,
              "images": len(files), "no_face": len(missed), **lfw_protocol(scores, same, folds)}
    _print_result(result, args.json, f"faces lfw {args.folder} (pairs without a face score -1)")
    return 0


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    action = {"detect": _detect, "compare": _compare, "eval": _eval, "lfw": _lfw}[args.action]
    with cli_logging(args.verbose, settings.logging.json_logs):
        engine = FaceEngine.from_settings(settings.vision, detector=args.detector)
        return action(engine, args)
