"""Vision benchmark: detect ms per 640x480 frame (p50, p95) per installed detector and embed ms
per face, beside OpenCV's own `cv2.FaceDetectorYN` running YuNet on the same frames in the same
run (the peer baseline). Frames are made from the shared face photos (letterboxed to 640x480).

    .venv/bin/python bench/vision.py [--rounds N] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.vision.align import align_face  # noqa: E402
from edge.vision.embedder import FrFeatureEmbedder  # noqa: E402
from edge.vision.engine import FaceEngine, build_detector, build_embedder  # noqa: E402
from edge.vision.manifest import load_manifest  # noqa: E402
from edge.vision.runtime import create_session  # noqa: E402
from foundation.logs import configure_logging  # noqa: E402
from foundation.settings import VisionSettings  # noqa: E402

SHARED = ROOT.parent / "shared"
PHOTOS = ["img1.jpg", "img2.jpg", "img3.jpg", "img9.jpg", "img17.jpg", "img20.jpg",
          "img28.jpg", "img38.jpg", "img47.jpg", "img54.jpg", "couple.jpg",
          "selfie-many-people.jpg"]
W, H = 640, 480


def frames() -> list[np.ndarray]:
    out = []
    for name in PHOTOS:
        img = cv2.imread(str(SHARED / "faces" / name))
        if img is None:
            continue
        s = min(W / img.shape[1], H / img.shape[0])
        small = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)),
                           interpolation=cv2.INTER_AREA)
        canvas = np.zeros((H, W, 3), np.uint8)
        y0, x0 = (H - small.shape[0]) // 2, (W - small.shape[1]) // 2
        canvas[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
        out.append(canvas)
    return out


def timed(fn: Callable[[np.ndarray], object], items: list[np.ndarray], rounds: int
          ) -> tuple[list[float], list[object]]:
    for item in items[:3]:
        fn(item)  # warm-up
    times, results = [], []
    for _ in range(rounds):
        for item in items:
            t = time.perf_counter()
            results.append(fn(item))
            times.append((time.perf_counter() - t) * 1000)
    return times, results


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)  # stdout: the table and the JSON line only
    settings = VisionSettings(intra_op_threads=args.threads,
                              **({"model_dir": args.model_dir} if args.model_dir else {}))
    manifest = load_manifest()
    cv2.setNumThreads(args.threads)
    imgs = frames()
    rows = []

    yunet_file = SHARED / "models" / "face_detection_yunet_2023mar.onnx"
    baseline = cv2.FaceDetectorYN.create(str(yunet_file), "", (W, H), settings.score_threshold,
                                         settings.nms_iou, 5000)
    contenders: dict[str, Callable[[np.ndarray], object]] = {
        "cv2.FaceDetectorYN yunet_2023mar (baseline)": lambda im: baseline.detect(im)[1]}
    for det in ("ultraface_landmark68", "yunet"):
        try:
            detector = build_detector(det, settings, manifest, Path(settings.model_dir))
        except Exception as exc:  # a detector whose model is not installed is skipped
            print(f"skip {det}: {exc}", file=sys.stderr)
            continue
        label = det + (" (default)" if det == settings.detector else "")
        contenders[label] = detector.detect
    # Interleaved: every frame goes through every contender in turn, so background load
    # hits them all alike.
    times: dict[str, list[float]] = {k: [] for k in contenders}
    faces: dict[str, int] = {k: 0 for k in contenders}
    for im in imgs[:3]:
        for fn in contenders.values():
            fn(im)
    for rnd in range(args.rounds):
        for im in imgs:
            for label, fn in contenders.items():
                t = time.perf_counter()
                found = fn(im)
                times[label].append((time.perf_counter() - t) * 1000)
                if rnd == 0:
                    faces[label] += 0 if found is None else len(found)
    base_p50 = pct(next(iter(times.values())), 50)
    for label, t in times.items():
        rows.append({"name": label, "p50_ms": pct(t, 50), "p95_ms": pct(t, 95),
                     "faces": faces[label], "speedup": base_p50 / pct(t, 50)})

    engine = FaceEngine.from_settings(settings)
    providers = engine.providers
    crops = []
    for im in imgs:
        crops += [align_face(im, f) for f in engine.detect(im)]
    embedder = build_embedder(settings, manifest, Path(settings.model_dir), args.threads)
    # peer: one session with every thread, the face and its mirror in one batch
    one_session = FrFeatureEmbedder(create_session(manifest, "fr_feature",
                                                   Path(settings.model_dir), settings.providers,
                                                   args.threads, (1, 3, 112, 112)))
    t1, _ = timed(lambda c: embedder.embed_crops([c]), crops, max(1, args.rounds // 2))
    t1_one, _ = timed(lambda c: one_session.embed_crops([c]), crops, max(1, args.rounds // 2))
    batches = [crops[i:i + 8] for i in range(0, len(crops) - 7, 8)] or [crops]
    tb, _ = timed(lambda b: embedder.embed_crops(list(b)), batches, args.rounds)
    per_face_batch = pct(tb, 50) / len(batches[0])

    print(f"vision bench: {len(imgs)} frames {W}x{H} from ../shared/faces x {args.rounds} "
          f"rounds; {platform.machine()}, {args.threads} threads, providers {providers}")
    print(f"{'detector':48} {'p50 ms':>8} {'p95 ms':>8} {'faces':>6} {'vs baseline':>12}")
    for r in rows:
        print(f"{r['name']:48} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['faces']:6d} "
              f"{r['speedup']:11.2f}x")
    print(f"embed fr_feature, 1 face a run:   p50 {pct(t1, 50):6.2f} ms/face "
          f"(p95 {pct(t1, 95):.2f}) over {len(crops)} faces"
          f"{'; face and mirror in parallel' if embedder.parallel_mirror else ''}")
    print(f"  peer: one session, face and mirror in one batch: p50 {pct(t1_one, 50):6.2f} ms/face")
    print(f"embed fr_feature, batch of {len(batches[0])}:      p50 {per_face_batch:6.2f} ms/face")
    default = next((r for r in rows if r["name"].endswith("(default)")), None)
    summary = {"frames": len(imgs), "rounds": args.rounds, "threads": args.threads,
               "providers": providers, "detectors": rows,
               "embed_ms_per_face_single": pct(t1, 50),
               "embed_parallel_mirror": embedder.parallel_mirror,
               "embed_ms_per_face_single_one_session": pct(t1_one, 50),
               "embed_ms_per_face_batch": per_face_batch,
               "default_speedup": default["speedup"] if default else None,
               "targets": {"default_speedup_min": 1.3, "embed_ms_max": 15.0}}
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
