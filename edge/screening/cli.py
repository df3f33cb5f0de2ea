"""`python -m edge thermal measure|synth|eval`: measure one visible + thermal pair, write a
synthetic set, score the screener on a set. Faces come from the vision room's FaceEngine."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TypedDict

from edge.screening.cli_inputs import (
    add_pair_arguments,
    face_detector,
    load_calibrated_pair,
    print_faces,
    run_action,
)
from edge.screening.evaluate import (
    EvalSetError,
    evaluate_set,
    format_result,
    write_synth_set,
)
from edge.screening.face_chips import SynthError, default_face_photos, load_face_photos
from edge.screening.thermal import REASONS, ThermalScreener
from foundation.settings import Settings


class _FaceReading(TypedDict):
    """One face of `thermal measure`: where it is and how it was screened."""

    box: list[float]
    canthus_c: float | None
    status: str
    reason: str | None


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use WIDTHxHEIGHT, e.g. 160x120") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"{text!r}: each side must be 16..4096")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="log engine events to stderr")
    sub = parser.add_subparsers(dest="thermal_command", metavar="SUBCOMMAND", required=True)
    m = sub.add_parser("measure", help="canthus temperature of each face in one image pair")
    add_pair_arguments(m)

    s = sub.add_parser("synth", help="write a synthetic visible + thermal set with ground truth")
    s.add_argument("--out", required=True, type=Path, help="output folder")
    s.add_argument("--count", type=int, default=100, help="frames (one traveller each)")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument("--thermal-size", type=_size, default=(160, 120), help="e.g. 160x120")
    s.add_argument("--visible-size", type=_size, default=(640, 480), help="e.g. 640x480")
    s.add_argument("--faces", type=Path,
                   help="folder of face photos (eyes found by the face engine); default: "
                        "scikit-image's astronaut photo")
    s.add_argument("--config", type=Path, help="settings TOML (vision section for --faces)")

    e = sub.add_parser("eval", help="score the screener on a set (synthetic or recorded)")
    e.add_argument("dir", type=Path, help="set folder: calibration.json, NNNN_visible.png, "
                   "NNNN_thermal.png, truth.csv and, optionally, faces.json (`thermal synth` "
                   "writes them all)")
    e.add_argument("--truth-landmarks", action="store_true",
                   help="use the true eye positions of faces.json instead of the face "
                        "engine's")
    e.add_argument("--config", type=Path, help="settings TOML (thermal and vision sections)")
    e.add_argument("--json", action="store_true", help="also print one JSON line at the end")


def run(args: argparse.Namespace) -> int:
    return run_action(args, {"measure": _measure, "synth": _synth, "eval": _eval},
                      args.thermal_command)


def _measure(args: argparse.Namespace, settings: Settings) -> int:
    calibration, thermal, visible = load_calibrated_pair(args.calibration, args.thermal,
                                                         args.visible)
    faces = face_detector(settings)(visible)
    # One frame decided alone (fusion over this one reading), as `thermal eval` scores it.
    screener = ThermalScreener(calibration, settings.thermal.model_copy(update={"fuse_frames": 1}))
    readings = screener.measure(faces, thermal)
    results: list[_FaceReading] = []
    for face, reading in zip(faces, readings, strict=True):
        track = screener.new_track()
        track.add(reading)
        decision = track.decide()
        results.append({"box": face.to_json()["box"], "canthus_c": decision.canthus_c,
                        "status": decision.status, "reason": decision.reason})
    threshold = screener.threshold_c()

    def describe(item: _FaceReading) -> str:
        if item["status"] == "unreliable":
            return f"unreliable: {REASONS.get(item['reason'] or '', item['reason'])}"
        return (f"canthus {item['canthus_c']:.2f} C  {item['status']} "
                f"(threshold {threshold:.2f} C core estimate)")

    return print_faces(results, describe, args.visible, args.json)


def _synth(args: argparse.Namespace, settings: Settings) -> int:
    if args.count < 1 or args.count > 100_000:
        print("error: --count must be 1..100000", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        raise SynthError(f"--out {args.out} is a file: pass a folder (it is created if needed)")
    photos = (load_face_photos(args.faces, face_detector(settings)) if args.faces
              else default_face_photos())
    t0 = time.perf_counter()
    write_synth_set(args.out, args.count, args.seed, photos, visible_size=args.visible_size,
                    thermal_size=args.thermal_size)
    print(f"wrote {args.count} frames from {len(photos)} face photo(s) to {args.out} "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    if not args.dir.is_dir():
        raise EvalSetError(f"{args.dir} is not a folder: pass the folder written by "
                           "`python -m edge thermal synth`")
    detect = None if args.truth_landmarks else face_detector(settings)
    result = evaluate_set(args.dir, settings.thermal, detect)
    source = ("true landmarks" if detect is None else "face engine landmarks"
              if (args.dir / "faces.json").exists() else
              "face engine landmarks, one face a frame: no faces.json")
    print(format_result(result, f"thermal eval of {args.dir} ({source}, threshold "
                                f"{settings.thermal.threshold_c} C)"))
    if args.json:
        print(json.dumps(result.to_json()))
    return 0
