"""Thermal screening benchmark: ms per face measurement and accuracy, against a peer baseline.

The baselines are what many simple "fever camera" pipelines do: the maximum pixel inside the face
box mapped into the thermal frame, raw or after a 3x3 median filter, with no blackbody drift
correction. Both run on the same rendered frames (true landmarks, so only the thermal estimate
is timed and scored), in the same run.

    .venv/bin/python bench/thermal.py [--frames N] [--seed S] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from table import print_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.capture.thermal import CK_AT_0C
from edge.screening.calibration import Calibration
from edge.screening.synth import (
    Person,
    SceneRenderer,
    default_face_photos,
    synthetic_calibration,
)
from edge.screening.thermal import ThermalScreener
from edge.vision.types import Face
from foundation.settings import ThermalSettings


def naive_face_box_max(calibration: Calibration, face: Face, frame: np.ndarray,
                       median: bool = False) -> float:
    """Peer baseline: hottest pixel in the face box (optionally 3x3-median filtered first),
    with no blackbody drift correction."""
    x, y, w, h = face.box
    corners = calibration.to_thermal(np.array([[x, y], [x + w, y + h]]))
    (x0, y0), (x1, y1) = np.floor(corners.min(0)).astype(int), np.ceil(corners.max(0)).astype(int)
    th, tw = frame.shape
    patch = frame[max(0, y0):min(th, y1), max(0, x0):min(tw, x1)]
    if median:
        patch = cv2.medianBlur(np.ascontiguousarray(patch), 3)
    return (float(patch.max()) - CK_AT_0C) / 100.0


def run_size(size: tuple[int, int], frames: int, seed: int, photos: list[np.ndarray]) -> dict:
    cal = synthetic_calibration((640, 480), size, seed)
    renderer = SceneRenderer(cal, photos, seed)
    screener = ThermalScreener(cal, ThermalSettings())
    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(frames):
        person = Person(0, float(rng.uniform(190, 420)), float(rng.uniform(190, 265)),
                        float(rng.uniform(160, 290)), round(float(rng.uniform(35.5, 39.5)), 2),
                        variant=i)
        _, thermal, truth = renderer.render([person])
        scenes.append((thermal, truth.people[0].face(), person.canthus_c))
    rows = {}
    for name, fn in (("canthus (ours)", lambda t, f: screener.measure([f], t)[0].canthus_c),
                     ("face-box max (peer)", lambda t, f: naive_face_box_max(cal, f, t)),
                     ("face-box median3 max (peer)",
                      lambda t, f: naive_face_box_max(cal, f, t, median=True))):
        for thermal, face, _ in scenes[:5]:
            fn(thermal, face)  # warm up
        times, errors = [], []
        for _ in range(3):
            for thermal, face, truth_c in scenes:
                t0 = time.perf_counter()
                value = fn(thermal, face)
                times.append((time.perf_counter() - t0) * 1000.0)
                if value is not None and len(errors) < len(scenes):
                    errors.append(value - truth_c)
        err = np.abs(np.array(errors))
        rows[name] = {"ms_median": float(np.median(times)),
                      "ms_p95": float(np.percentile(times, 95)),
                      "mae_c": float(err.mean()), "max_error_c": float(err.max()),
                      "measured": len(errors)}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=314)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    photos = default_face_photos()
    results = {}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; "
          f"{args.frames} frames per size, one face each, 3 timing passes")
    for size in ((160, 120), (320, 240)):
        results[f"{size[0]}x{size[1]}"] = run_size(size, args.frames, args.seed, photos)
    print_table((("thermal", ">8s"), ("method", "<28s"), ("ms/face", "8.3f"), ("p95 ms", "8.3f"),
                 ("MAE C", "7.3f"), ("max C", "7.3f")),
                [(size, name, r["ms_median"], r["ms_p95"], r["mae_c"], r["max_error_c"])
                 for size, rows in results.items() for name, r in rows.items()], rule=False)
    if args.json:
        print(json.dumps({"bench": "thermal", "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
