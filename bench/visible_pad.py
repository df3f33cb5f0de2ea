"""Visible-only PAD evaluation: does faceplugin's `fr_liveness.onnx` tell re-photographed prints
and screens from bona fide photos?

The model comes from the pinned npm package (models/manifest.toml,
faceplugin-face-recognition-js@0.0.1, tarball sha256 checked) and is fed as the package's
lib/fr_liveness.js does: the detector box scaled 2.7x about its centre (shifted into the
image, clamped), resized to 128x128, RGB, raw 0..255, NCHW; softmax over its 3 outputs; the JS
reports class 0 as the liveness score. Both readings (class 0 and class 1, Silent-Face's
"real") are scored here.

Presentations, from the real photos in ../shared/faces (one row per photo and variant):

* bona fide: the photo itself as the scene, cropped 4:3 about the face and captured by a
  simulated kiosk camera (optics blur, sensor noise, JPEG) at 640x480;
* print: the photo printed (gamut compression, raised black, paper tint, halftone screen,
  paper texture), on a sheet with a margin, under a lighting gradient and sometimes a glare
  patch, warped by a perspective onto a background, captured by the same camera;
* screen: the photo shown on a screen (gamma and white-point shift, RGB sub-pixel stripes
  that alias into moiré when the camera samples them, a black bezel, glare), warped and
  captured likewise.

Synthetic re-photographs are weaker evidence than real ones: real prints and screens have
paper fibre, ink gloss, display flicker and camera interactions this does not model, and the
"bona fide" photos were taken by other cameras than a gate's. A model that fails here would
very likely fail on real attacks; one that passes here is not thereby shown to work.

    .venv/bin/python bench/visible_pad.py [--variants 3] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import platform
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.vision.engine import FaceEngine
from foundation.settings import VisionSettings

ROOT = Path(__file__).resolve().parents[1]
TARBALL = Path.home() / ".cache/consentgate/npm/faceplugin-face-recognition-js-0.0.1.tgz"
TARBALL_SHA256 = "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba"
MODEL_SHA256 = "afa783b7e902fdfcf323a7240cac2a1c580c25314ea4161129dc1b0d100dc32d"
FACES = ROOT.parent / "shared" / "faces"
FRAME = (640, 480)


def load_model_bytes(tarball: Path) -> bytes:
    data = tarball.read_bytes()
    if hashlib.sha256(data).hexdigest() != TARBALL_SHA256:
        raise SystemExit(f"{tarball}: tarball sha256 differs from the pinned one")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("package/model/fr_liveness.onnx")
        assert member is not None
        model = member.read()
    if hashlib.sha256(model).hexdigest() != MODEL_SHA256:
        raise SystemExit("fr_liveness.onnx sha256 differs from the one evaluated")
    return model


def liveness_input(image_bgr: np.ndarray, box: tuple[float, float, float, float],
                   scale_value: float = 2.7) -> np.ndarray:
    """lib/fr_liveness.js alignLivenessImage + preprocessLiveness (1x3x128x128 RGB 0..255)."""
    src_h, src_w = image_bgr.shape[:2]
    x, y, bw, bh = (int(v) for v in box)
    scale = min((src_h - 1) / bh, (src_w - 1) / bw, scale_value)
    nw, nh = bw * scale, bh * scale
    cx, cy = bw / 2 + x, bh / 2 + y
    x0, y0, x1, y1 = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if x0 < 0:
        x1 -= x0
        x0 = 0
    if y0 < 0:
        y1 -= y0
        y0 = 0
    if x1 > src_w - 1:
        x0 -= x1 - src_w + 1
        x1 = src_w - 1
    if y1 > src_h - 1:
        y0 -= y1 - src_h + 1
        y1 = src_h - 1
    rx, ry = max(int(x0), 0), max(int(y0), 0)
    rw, rh = min(int(x1 - x0), src_w - 1), min(int(y1 - y0), src_h - 1)
    crop = image_bgr[ry:ry + rh, rx:rx + rw]
    rgb = cv2.cvtColor(cv2.resize(crop, (128, 128)), cv2.COLOR_BGR2RGB).astype(np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


CAMERAS = {"webcam": ((1.5, 4.0), (75, 93)), "clean": ((0.0, 0.0), (95, 96))}
CAMERA = {"name": "webcam"}  # which simulated camera captures every presentation (--camera)


def camera(scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The simulated kiosk camera: scene -> 640x480 frame, optics blur, sensor noise (sigma in
    grey levels) and JPEG: `webcam` (noise 1.5-4, JPEG 75-92) or `clean` (none, JPEG 95)."""
    (n0, n1), (q0, q1) = CAMERAS[CAMERA["name"]]
    frame = cv2.resize(scene, FRAME, interpolation=cv2.INTER_AREA).astype(np.float32)
    frame = cv2.GaussianBlur(frame, (0, 0), float(rng.uniform(0.4, 0.9)))
    frame += rng.normal(0, float(rng.uniform(n0, n1)) + 1e-9, frame.shape).astype(np.float32)
    ok, jpg = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8),
                           [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(q0, q1))])
    assert ok
    return cv2.imdecode(jpg, cv2.IMREAD_COLOR)


def crop_43(image: np.ndarray, box: tuple[float, float, float, float], face_share: float
            ) -> np.ndarray:
    """A 4:3 crop about the face whose width makes the face `face_share` of it (as far as the
    photo allows), padded by edge replication where it runs out."""
    x, y, w, h = box
    cw = w / face_share
    ch = cw * 3 / 4
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(cx - cw / 2), int(cy - ch / 2)
    pad = int(max(cw, ch))
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return big[y0 + pad:y0 + pad + int(ch), x0 + pad:x0 + pad + int(cw)]


def background(photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A plausible hall behind the instrument: another photo, enlarged and blurred, or a wall."""
    w, h = FRAME[0] * 2, FRAME[1] * 2
    if rng.random() < 0.6:
        other = photos[int(rng.integers(len(photos)))]
        bg = cv2.GaussianBlur(cv2.resize(other, (w, h)), (0, 0), float(rng.uniform(4, 12)))
    else:
        top, bottom = rng.uniform(90, 220, 3), rng.uniform(60, 180, 3)
        ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        bg = np.broadcast_to(top + (bottom - top) * ramp, (h, w, 3)).astype(np.uint8).copy()
    return bg


def place(bg: np.ndarray, sheet: np.ndarray, face_box_in_sheet: tuple[float, ...],
          face_share: float, rng: np.random.Generator) -> np.ndarray:
    """Warp `sheet` onto `bg` by a random perspective so its face is `face_share` of the width."""
    h, w = bg.shape[:2]
    sh, sw = sheet.shape[:2]
    fx, fy, fw, fh = face_box_in_sheet
    scale = face_share * w / fw
    cx, cy = w / 2 + rng.uniform(-0.08, 0.08) * w, h * rng.uniform(0.42, 0.55)
    src = np.float32([[0, 0], [sw, 0], [sw, sh], [0, sh]])
    dst = (src - np.float32([fx + fw / 2, fy + fh / 2])) * scale + np.float32([cx, cy])
    dst += rng.uniform(-0.06, 0.06, dst.shape).astype(np.float32) * scale * max(sw, sh) / 2
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(sheet, m, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((sh, sw), np.float32), m, (w, h))[..., None]
    return (bg * (1 - mask) + warped * mask).astype(np.uint8)


def glare(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.1, 0.9) * h
    s = rng.uniform(0.1, 0.35) * w
    blob = np.exp(-(((xs - cx) ** 2 + ((ys - cy) * rng.uniform(0.5, 2)) ** 2) / (2 * s * s)))
    return np.clip(image.astype(np.float32) + strength * 255 * blob[..., None], 0, 255).astype(
        np.uint8)


def print_attack(photo: np.ndarray, box: tuple[float, ...], photos: list[np.ndarray],
                 rng: np.random.Generator) -> np.ndarray:
    img = photo.astype(np.float32) / 255.0
    grey = img.mean(axis=2, keepdims=True)
    img = grey + (img - grey) * rng.uniform(0.65, 0.9)  # ink gamut: less saturation
    black, white = rng.uniform(0.06, 0.16), rng.uniform(0.86, 0.97)
    img = black + (white - black) * img ** rng.uniform(0.85, 1.2)
    img *= np.float32([rng.uniform(0.9, 0.97), rng.uniform(0.96, 1.0), 1.0])  # warm paper
    scale = 3  # halftone screen at 3x the photo's resolution
    big = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[0:big.shape[0], 0:big.shape[1]].astype(np.float32)
    period = rng.uniform(2.5, 4.5)
    for c, angle in enumerate((15, 75, 0)):
        a = np.radians(angle + rng.uniform(-3, 3))
        u = xs * np.cos(a) + ys * np.sin(a)
        v = -xs * np.sin(a) + ys * np.cos(a)
        dots = 0.5 + 0.25 * (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period))
        big[..., c] = np.where(big[..., c] < dots, big[..., c] * 0.85, big[..., c])
    texture = cv2.GaussianBlur(rng.normal(0, 1, big.shape[:2]).astype(np.float32), (0, 0), 2)
    big *= (1 + rng.uniform(0.01, 0.04) * texture)[..., None]
    margin = int(rng.uniform(0.05, 0.25) * big.shape[1])
    sheet = cv2.copyMakeBorder(np.clip(big, 0, 1), margin, margin, margin, margin,
                               cv2.BORDER_CONSTANT, value=(white * 0.95,) * 3)
    ramp = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(0.85, 1.1), sheet.shape[1])
    sheet = np.clip(sheet * ramp[None, :, None].astype(np.float32), 0, 1)
    sheet_u8 = (sheet * 255).astype(np.uint8)
    if rng.random() < 0.5:
        sheet_u8 = glare(sheet_u8, rng, float(rng.uniform(0.1, 0.4)))
    fb = tuple(v * scale + (margin if i < 2 else 0) for i, v in enumerate(box))
    scene = place(background(photos, rng), sheet_u8, fb, float(rng.uniform(0.18, 0.35)), rng)
    return camera(scene, rng)


def screen_attack(photo: np.ndarray, box: tuple[float, ...], photos: list[np.ndarray],
                  rng: np.random.Generator) -> np.ndarray:
    h, w = photo.shape[:2]
    disp = int(rng.uniform(260, 520))  # display pixels across the photo's width
    img = cv2.resize(photo, (disp, int(disp * h / w)), interpolation=cv2.INTER_AREA)
    img = img.astype(np.float32) / 255.0
    img = img ** rng.uniform(0.75, 1.05)  # display gamma
    img = rng.uniform(0.02, 0.08) + (1 - 0.08) * img  # black glow
    img *= np.float32([rng.uniform(1.0, 1.12), 1.0, rng.uniform(0.88, 1.0)])  # BGR: bluer white
    sub = 3  # each display pixel: R, G, B stripes and a dark gap
    big = np.zeros((img.shape[0] * sub, img.shape[1] * sub, 3), np.float32)
    for k, ch in enumerate((2, 1, 0)):  # R G B left to right (BGR channel indices)
        big[:, k::sub, ch] = np.repeat(np.repeat(img[..., ch], sub, axis=0), 1, axis=1)
    big[sub - 1::sub, :, :] *= 0.5  # row gaps
    plain = cv2.resize(img, (big.shape[1], big.shape[0]), interpolation=cv2.INTER_NEAREST)
    mix = float(rng.uniform(0.15, 0.6))  # how much of the sub-pixel grid the camera resolves
    big = np.clip(mix * big * 2.4 + (1 - mix) * plain, 0, 1)
    bezel = int(rng.uniform(0.03, 0.1) * big.shape[1])
    sheet = cv2.copyMakeBorder(big, bezel, bezel, bezel, bezel, cv2.BORDER_CONSTANT,
                               value=(0.03, 0.03, 0.03))
    sheet_u8 = (sheet * 255).astype(np.uint8)
    if rng.random() < 0.6:
        sheet_u8 = glare(sheet_u8, rng, float(rng.uniform(0.1, 0.5)))
    k = disp * sub / w
    fb = (box[0] * k + bezel, box[1] * k + bezel, box[2] * k, box[3] * k)
    scene = place(background(photos, rng), sheet_u8, fb, float(rng.uniform(0.18, 0.35)), rng)
    return camera(scene, rng)


def bona_fide(photo: np.ndarray, box: tuple[float, ...], rng: np.random.Generator
              ) -> np.ndarray:
    return camera(crop_43(photo, box, float(rng.uniform(0.18, 0.35))), rng)


def auc(pos: list[float], neg: list[float]) -> float | None:
    """P(score of a bona fide > score of an attack), ties half."""
    if not pos or not neg:
        return None
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=3, help="presentations per photo/kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faces", type=Path, default=FACES)
    parser.add_argument("--tarball", type=Path, default=TARBALL)
    parser.add_argument("--camera", choices=sorted(CAMERAS), default="webcam",
                        help="the simulated camera every presentation is captured with")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    CAMERA["name"] = args.camera
    import onnxruntime as ort

    cv2.setNumThreads(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(load_model_bytes(args.tarball), sess_options=opts,
                                   providers=["CPUExecutionProvider"])
    model_dir = Path(os.environ.get("CONSENTGATE_MODEL_DIR", ROOT / ".models"))
    engine = FaceEngine.from_settings(VisionSettings(model_dir=model_dir, intra_op_threads=1))
    with open(args.faces / "identities.csv") as fh:
        files = [row["file"] for row in csv.DictReader(fh)]
    photos, boxes = [], []
    for name in files:
        image = cv2.imread(str(args.faces / name), cv2.IMREAD_COLOR)
        faces = engine.detect(image) if image is not None else []
        if faces:  # photos scaled so the face is at most 320 px wide (what a kiosk sees)
            k = min(1.0, 320.0 / faces[0].box[2])
            photos.append(cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA))
            boxes.append(tuple(v * k for v in faces[0].box))
    rng = np.random.default_rng(args.seed)
    makers = {"bona_fide": lambda p, b: bona_fide(p, b, rng),
              "print": lambda p, b: print_attack(p, b, photos, rng),
              "screen": lambda p, b: screen_attack(p, b, photos, rng)}
    scores: dict[str, list[np.ndarray]] = {k: [] for k in makers}
    missed = dict.fromkeys(makers, 0)
    ms: list[float] = []
    raw: list[np.ndarray] = []
    for photo, box in zip(photos, boxes, strict=True):
        out = session.run(None, {"input": liveness_input(photo, box)})[0][0]
        raw.append(np.exp(out - out.max()) / np.exp(out - out.max()).sum())
        for kind, make in makers.items():
            for _ in range(args.variants):
                frame = make(photo, box)
                faces = sorted(engine.detect(frame), key=lambda f: -f.box[2])  # the nearest
                if not faces:
                    missed[kind] += 1
                    continue
                t0 = time.perf_counter()
                out = session.run(None, {"input": liveness_input(frame, faces[0].box)})[0][0]
                ms.append((time.perf_counter() - t0) * 1000)
                e = np.exp(out - out.max())
                scores[kind].append(e / e.sum())
    result: dict = {"machine": platform.processor() or platform.machine(), "camera": args.camera,
                    "photos": len(photos), "variants": args.variants, "seed": args.seed,
                    "ms_per_face_median": round(float(np.median(ms)), 2),
                    "missed_faces": missed,
                    "original_photos_mean_softmax": np.mean(raw, axis=0).round(3).tolist()}
    for cls in (0, 1):
        live = [float(s[cls]) for s in scores["bona_fide"]]
        entry: dict = {"bona_fide_median": round(float(np.median(live)), 3)}
        for kind in ("print", "screen"):
            att = [float(s[cls]) for s in scores[kind]]
            entry[f"auc_vs_{kind}"] = auc(live, att)
            entry[f"{kind}_median"] = round(float(np.median(att)), 3)
            thr = float(np.percentile(live, 5))  # BPCER 5 %
            entry[f"apcer_{kind}_at_bpcer5"] = round(float(np.mean(np.array(att) >= thr)), 3)
        result[f"class{cls}_as_live"] = entry
    print(f"visible PAD (fr_liveness.onnx) on {len(photos)} photos x {args.variants} variants, "
          f"seed {args.seed}, {args.camera} camera, {result['machine']}")
    print(f"  mean softmax on the original photos: {result['original_photos_mean_softmax']}")
    print(f"  faces not detected: {missed}; {result['ms_per_face_median']} ms per face")
    for cls in (0, 1):
        e = result[f"class{cls}_as_live"]
        print(f"  class {cls} as live: AUC print {e['auc_vs_print']:.3f} screen "
              f"{e['auc_vs_screen']:.3f}; medians bona fide {e['bona_fide_median']} print "
              f"{e['print_median']} screen {e['screen_median']}; APCER at BPCER 5 %: print "
              f"{e['apcer_print_at_bpcer5']} screen {e['apcer_screen_at_bpcer5']}")
    if args.json:
        print(json.dumps({"bench": "visible_pad", **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
