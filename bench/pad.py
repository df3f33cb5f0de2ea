"""Thermal PAD benchmark: ms per face and APCER / BPCER, against a naive peer baseline.

The baseline is what simple "is it warm?" liveness checks do: the mean temperature of the face
box mapped into the thermal frame, live when it lies in [30, 38] C (no blackbody correction).
Both run on the same rendered scenes (every species of `edge.screening.pad_synth`, true face
boxes and landmarks, OpenCV on one thread), in the same run, at 160x120 and 320x240.

    .venv/bin/python bench/pad.py [--per-species N] [--seed S] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.capture.thermal import CK_AT_0C
from edge.screening.calibration import Calibration
from edge.screening.pad import PadDetector
from edge.screening.pad_eval import PadEvalResult
from edge.screening.pad_synth import SPECIES, PadSceneGenerator
from edge.screening.synth import default_face_photos, synthetic_calibration
from edge.vision.types import Face


def naive_warm_face(calibration: Calibration, face: Face, frame: np.ndarray) -> str:
    """Peer baseline: mean of the face box in the thermal frame within [30, 38] C."""
    x, y, w, h = face.box
    corners = calibration.to_thermal(np.array([[x, y], [x + w, y + h]]))
    (x0, y0), (x1, y1) = np.floor(corners.min(0)).astype(int), np.ceil(corners.max(0)).astype(int)
    th, tw = frame.shape
    patch = frame[max(0, y0):min(th, y1), max(0, x0):min(tw, x1)]
    if patch.size == 0:
        return "unknown"
    mean_c = (float(patch.mean()) - CK_AT_0C) / 100.0
    return "live" if 30.0 <= mean_c <= 38.0 else "attack"


def run_size(size: tuple[int, int], per_species: int, seed: int,
             photos: list[np.ndarray]) -> dict:
    calibration = synthetic_calibration((640, 480), size, seed=seed)
    gen = PadSceneGenerator(calibration, photos, seed=seed + 7919)
    pad = PadDetector(calibration)
    ours, peer = PadEvalResult(), PadEvalResult()
    for species in SPECIES:
        for _ in range(per_species):
            scene = gen.make(species)
            t0 = time.perf_counter()
            r = pad.measure([scene.face], scene.thermal_ck)[0]
            ours.measure_ms.append((time.perf_counter() - t0) * 1000.0)
            ours.add(species, r.decision, None if r.decision == "live" else r.reason)
            t0 = time.perf_counter()
            d = naive_warm_face(calibration, scene.face, scene.thermal_ck)
            peer.measure_ms.append((time.perf_counter() - t0) * 1000.0)
            peer.add(species, d)
    return {"size": f"{size[0]}x{size[1]}", "ours": ours.to_json(), "peer": peer.to_json(),
            "ours_p99_ms": round(float(np.percentile(ours.measure_ms, 99)), 3)}


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:6.2f} %"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-species", type=int, default=40, help="scenes per species per size")
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    photos = default_face_photos()
    results = [run_size(size, args.per_species, args.seed, photos)
               for size in ((160, 120), (320, 240))]
    print(f"thermal PAD bench ({platform.processor() or platform.machine()}, 1 OpenCV thread, "
          f"{args.per_species} scenes per species per size, seed {args.seed})")
    for res in results:
        ours, peer = res["ours"], res["peer"]
        print(f"\n{res['size']}              {'ours':>10s} {'peer (mean in 30-38 C)':>24s}")
        print(f"  ms per face (median) {ours['ms_per_face']:10.3f} {peer['ms_per_face']:24.3f}")
        for name in ours["apcer"]:
            print(f"  APCER {name:14s} {_pct(ours['apcer'][name]):>10s} "
                  f"{_pct(peer['apcer'][name]):>24s}")
        print(f"  BPCER (bona fide)    {_pct(ours['bpcer']):>10s} {_pct(peer['bpcer']):>24s}")
        for name, v in ours["bpcer_by_species"].items():
            print(f"    BPCER {name:18s} {_pct(v):>8s} "
                  f"{_pct(peer['bpcer_by_species'][name]):>24s}")
    if args.json:
        print(json.dumps({"bench": "pad", "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
