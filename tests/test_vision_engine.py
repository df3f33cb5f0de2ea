"""Face engine on real photos: golden boxes, landmarks, batching, matching, quality."""

from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
import structlog
from structlog.testing import capture_logs

from edge.vision.embedder import FrFeatureEmbedder
from edge.vision.engine import FaceEngine, build_embedder
from edge.vision.imageio import load_image
from edge.vision.manifest import load_manifest
from edge.vision.quality import BLURRED, NOT_FRONTAL, TOO_SMALL, yaw_ratio
from edge.vision.runtime import create_session
from foundation.settings import VisionSettings

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_faces.json").read_text())["files"]
DETECTORS = ["ultraface_landmark68", "yunet"]


@pytest.fixture(scope="module", params=DETECTORS)
def engine(request, installed_model_dir: Path) -> FaceEngine:
    settings = VisionSettings(model_dir=installed_model_dir, detector=request.param,
                              providers=["cpu"])
    return FaceEngine.from_settings(settings)


@pytest.fixture(scope="module")
def default_engine(installed_model_dir: Path) -> FaceEngine:
    return FaceEngine.from_settings(VisionSettings(model_dir=installed_model_dir,
                                                   providers=["cpu"]))


def iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    return w * h / (a[2] * a[3] + b[2] * b[3] - w * h)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_known_faces_found_within_tolerance(engine: FaceEngine, faces_dir: Path, name: str):
    expected = GOLDEN[name][engine.detector_name]
    found = engine.detect(load_image(faces_dir / name))
    assert len(found) == len(expected), f"{name}: {len(found)} faces, expected {len(expected)}"
    for box in expected:
        best = max(iou(box, f.box) for f in found)
        assert best >= 0.8, f"{name}: expected box {box} matched only at IoU {best:.2f}"
    for f in found:
        x, y, w, h = f.box
        lm = f.landmarks
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        inside = ((lm[:, 0] >= x - 0.1 * w) & (lm[:, 0] <= x + 1.1 * w)
                  & (lm[:, 1] >= y - 0.1 * h) & (lm[:, 1] <= y + 1.1 * h))
        assert inside.all(), f"{name}: landmarks outside their box"
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left points first
        assert lm[2, 1] > lm[:2, 1].mean() and lm[3:, 1].mean() > lm[2, 1]


def test_detect_rejects_nothing_on_blank_and_handles_grey(engine: FaceEngine, faces_dir: Path):
    assert engine.detect(np.zeros((480, 640, 3), np.uint8)) == []
    grey = cv2.cvtColor(load_image(faces_dir / "img1.jpg"), cv2.COLOR_BGR2GRAY)
    assert len(engine.detect(grey)) == 1
    with pytest.raises(ValueError):
        engine.detect(np.zeros((10, 10, 3), np.float32))


def test_small_frame_coordinates_stay_in_original_pixels(engine: FaceEngine, faces_dir: Path):
    image = load_image(faces_dir / "img1.jpg")
    big = engine.detect(image)[0]
    half = engine.detect(cv2.resize(image, None, fx=0.5, fy=0.5))[0]
    scaled = tuple(v * 2 for v in half.box)
    assert iou(big.box, scaled) > 0.85


def test_embed_batch_equals_single_and_is_normalised(default_engine: FaceEngine,
                                                     faces_dir: Path):
    image = load_image(faces_dir / "couple.jpg")
    faces = default_engine.detect(image)
    batch = default_engine.embed(image, faces)
    assert batch.shape == (2, 512) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    for i, f in enumerate(faces):
        single = default_engine.embed(image, [f])[0]
        assert default_engine.similarity(single, batch[i]) > 0.9999
    assert default_engine.embed(image, []).shape == (0, 512)


@pytest.mark.parametrize("threads", [1, 2, 0])
def test_embedder_runs_face_and_mirror_on_two_sessions_with_the_same_result(
        installed_model_dir: Path, faces_dir: Path, default_engine: FaceEngine, threads: int):
    """With two or more threads on the CPU provider the face and its mirror run at once on two
    half-thread sessions; the embeddings are those of one session running both in one batch."""
    settings = VisionSettings(model_dir=installed_model_dir, providers=["cpu"],
                              intra_op_threads=threads)
    manifest = load_manifest()
    split = build_embedder(settings, manifest, installed_model_dir)
    one = FrFeatureEmbedder(create_session(manifest, "fr_feature", installed_model_dir,
                                           ["cpu"], 2))
    assert split.parallel_mirror is ((threads or os.cpu_count() or 1) >= 2)  # 0: every core
    image = load_image(faces_dir / "couple.jpg")
    faces = default_engine.detect(image)  # detection does not depend on the embedder
    ours, theirs = split.embed(image, faces), one.embed(image, faces)
    assert ours.shape == (len(faces), 512)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    unmirrored = build_embedder(settings.model_copy(update={"mirror_average": False}), manifest,
                                installed_model_dir)
    assert not unmirrored.parallel_mirror


def _pairs(faces_dir: Path) -> list[tuple[str, str, bool]]:
    with open(faces_dir / "master.csv", newline="") as fh:
        rows = [(r["file_x"], r["file_y"], r["Decision"] == "Yes") for r in csv.DictReader(fh)]
    rng = random.Random(7)
    same = [r for r in rows if r[2]]
    diff = [r for r in rows if not r[2]]
    return rng.sample(same, 12) + rng.sample(diff, 12)


def test_same_person_above_and_different_below_threshold(default_engine: FaceEngine,
                                                         faces_dir: Path):
    cache: dict[str, np.ndarray] = {}

    def emb(name: str) -> np.ndarray:
        if name not in cache:
            image = load_image(faces_dir / name)
            faces = default_engine.detect(image)
            face = max(faces, key=lambda f: f.box[2] * f.box[3])
            cache[name] = default_engine.embed(image, [face])[0]
        return cache[name]

    wrong = []
    for a, b, same in _pairs(faces_dir):
        sim = default_engine.similarity(emb(a), emb(b))
        if (sim >= default_engine.threshold) != same:
            wrong.append((a, b, same, round(sim, 3)))
    assert not wrong, f"misclassified at threshold {default_engine.threshold}: {wrong}"


def test_quality_reasons(default_engine: FaceEngine, faces_dir: Path):
    image = load_image(faces_dir / "img2.jpg")
    face = default_engine.detect(image)[0]
    assert default_engine.quality(image, face).ok
    blurred = cv2.GaussianBlur(image, (0, 0), 12)
    q = default_engine.quality(blurred, default_engine.detect(blurred)[0])
    assert BLURRED in q.reasons and not q.ok
    small = cv2.resize(image, None, fx=0.08, fy=0.08, interpolation=cv2.INTER_AREA)
    small_faces = default_engine.detect(small)
    assert small_faces, "the downscaled face should still be found"
    assert TOO_SMALL in default_engine.quality(small, small_faces[0]).reasons


def test_yaw_ratio_from_landmarks():
    frontal = np.array([[40, 50], [70, 50], [55, 65], [43, 80], [67, 80]], np.float32)
    turned = frontal.copy()
    turned[2, 0] = 68
    assert yaw_ratio(frontal) < 0.05
    assert yaw_ratio(turned) > 0.35
    assert NOT_FRONTAL == "face the camera"


def test_engine_logs_providers_and_never_embeddings(installed_model_dir: Path,
                                                    faces_dir: Path):
    structlog.reset_defaults()  # a CLI test may have left a warning-level filter configured
    with capture_logs() as logs:
        engine = FaceEngine.from_settings(VisionSettings(model_dir=installed_model_dir,
                                                         providers=["cpu"]))
        image = load_image(faces_dir / "img1.jpg")
        engine.embed(image, engine.detect(image))
    sessions = [e for e in logs if e["event"] == "vision_session"]
    assert {e["model"] for e in sessions} == {"fr_detect", "fr_landmark", "fr_feature"}
    assert all(e["providers"] == ["CPUExecutionProvider"] for e in sessions)
    for event in logs:
        for value in event.values():
            assert not isinstance(value, np.ndarray)
            assert not (isinstance(value, list | tuple) and len(value) > 16)
