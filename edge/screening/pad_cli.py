"""`python -m edge pad eval|measure|synth`: score thermal presentation-attack detection on a set,
decide one visible + thermal pair, write a synthetic attack set. Faces come from the vision
room's FaceEngine (eval uses the set's faces.json with --truth-faces)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edge.screening.cli_inputs import (
    add_pair_arguments,
    face_detector,
    load_calibrated_pair,
    print_faces,
    run_action,
)
from edge.screening.pad import REASONS, PadDetector
from edge.screening.pad_eval import PadEvalError, evaluate_pad_set, format_pad_result, write_pad_set
from edge.screening.synth import default_face_photos, synthetic_calibration
from edge.vision.types import Face
from foundation.settings import Settings

SIZES = {"160x120": (160, 120), "320x240": (320, 240)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="log engine events to stderr")
    sub = parser.add_subparsers(dest="pad_command", metavar="SUBCOMMAND", required=True)
    e = sub.add_parser("eval", help="APCER per attack species and BPCER on a set")
    e.add_argument("dir", type=Path, help="folder: calibration.json, NNNN_visible.png, "
                                          "NNNN_thermal.png, truth.csv (frame,label)")
    e.add_argument("--truth-faces", action="store_true",
                   help="use the set's faces.json instead of the face engine")
    e.add_argument("--config", type=Path, help="settings TOML (vision section)")
    e.add_argument("--json", action="store_true", help="also print one JSON line at the end")

    m = sub.add_parser("measure", help="live / attack / unknown for each face of one pair")
    add_pair_arguments(m)

    s = sub.add_parser("synth", help="write a synthetic bona fide + attack set")
    s.add_argument("dir", type=Path, help="output folder (created if needed)")
    s.add_argument("--frames", type=int, default=90, help="frames (species in turn)")
    s.add_argument("--size", choices=sorted(SIZES), default="160x120", help="thermal size")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--config", type=Path, help="settings TOML (unused; accepted for symmetry)")


def run(args: argparse.Namespace) -> int:
    return run_action(args, {"eval": _eval, "measure": _measure, "synth": _synth},
                      args.pad_command)


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    if not args.dir.is_dir():
        raise PadEvalError(f"{args.dir} is not a folder: pass the folder written by "
                           "`python -m edge pad synth`")
    detect = None if args.truth_faces else face_detector(settings)
    result = evaluate_pad_set(args.dir, detect)
    source = "true faces" if detect is None else "face engine"
    print(format_pad_result(result, f"pad eval of {args.dir} ({source})"))
    if args.json:
        print(json.dumps(result.to_json()))
    return 0


def _measure(args: argparse.Namespace, settings: Settings) -> int:
    calibration, thermal, visible = load_calibrated_pair(args.calibration, args.thermal,
                                                         args.visible)
    faces: list[Face] = face_detector(settings)(visible)
    results = PadDetector(calibration).measure(faces, thermal)
    items = [{"box": face.to_json()["box"], **r.to_json()}
             for face, r in zip(faces, results, strict=True)]
    return print_faces(items, lambda item: f"{item['decision']} (score {item['score']:.2f}): "
                                           f"{REASONS.get(item['reason'], item['reason'])}",
                       args.visible, args.json)


def _synth(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.frames <= 100_000:
        print("error: --frames must be 1..100000", file=sys.stderr)
        return 2
    if args.dir.exists() and not args.dir.is_dir():
        raise PadEvalError(f"{args.dir} is a file: pass a folder (it is created if needed)")
    calibration = synthetic_calibration((640, 480), SIZES[args.size], args.seed)
    t0 = time.perf_counter()
    write_pad_set(args.dir, args.frames, args.seed, default_face_photos(), calibration)
    print(f"wrote {args.frames} frames ({args.size} thermal) to {args.dir} in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0
