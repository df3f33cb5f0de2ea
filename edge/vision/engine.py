"""FaceEngine: the one facade other rooms use (detect, embed, quality, similarity).

    engine = FaceEngine.from_settings(settings.vision)   # loads, verifies, warms up
    faces = engine.detect(image_bgr)
    embeddings = engine.embed(image_bgr, faces)          # (n, 512) float32, L2-normalised

Embeddings are returned to the caller and never stored or logged here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypedDict

import numpy as np
import structlog

from edge.vision.detect_ultraface import UltraFaceLandmarkDetector
from edge.vision.detect_yunet import YuNetDetector
from edge.vision.embedder import FrFeatureEmbedder
from edge.vision.manifest import Manifest, load_manifest
from edge.vision.quality import assess
from edge.vision.runtime import Session, create_session
from edge.vision.types import Detector, Face, Quality
from foundation.settings import VisionSettings

log = structlog.get_logger(__name__)

DETECTORS = ("ultraface_landmark68", "yunet")


class _DetectorParams(TypedDict):
    """The keyword arguments every detector takes from the settings."""

    max_side: int
    score_threshold: float
    nms_iou: float


def build_detector(name: str, settings: VisionSettings, manifest: Manifest,
                   model_dir: Path) -> Detector:
    """The detector named in settings, on verified, warmed-up sessions."""
    common: _DetectorParams = {"max_side": settings.detect_max_side,
                               "score_threshold": settings.score_threshold,
                               "nms_iou": settings.nms_iou}

    def session(model: str, shape: tuple[int, ...] | None = None) -> Session:
        return create_session(manifest, model, model_dir, settings.providers,
                              settings.intra_op_threads, warmup_shape=shape)
    if name == "ultraface_landmark68":
        return UltraFaceLandmarkDetector(session("fr_detect"), session("fr_landmark"), **common)
    if name == "yunet":
        return YuNetDetector(session("yunet", (1, 3, 480, 640)), **common)
    if name == "yunet_2023mar":
        return YuNetDetector(session("yunet_2023mar"), fixed_size=(640, 640), **common)
    raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")


def build_embedder(settings: VisionSettings, manifest: Manifest, model_dir: Path,
                   threads: int | None = None) -> FrFeatureEmbedder:
    """The embedder on verified, warmed-up sessions with `threads` (default: the settings')
    onnxruntime threads. With mirror averaging on the CPU provider and at least two threads,
    two sessions of half the threads each run a face and its mirror at the same time (faster
    than one session running both; docs/rooms/vision.md); on a GPU provider one session runs
    both in one batch."""
    threads = settings.intra_op_threads if threads is None else threads
    total = threads or os.cpu_count() or 1  # 0: onnxruntime's "every core"
    split = settings.mirror_average and total >= 2

    def session(n: int) -> Session:
        return create_session(manifest, settings.embedder, model_dir, settings.providers, n,
                              warmup_shape=(1, 3, 112, 112))
    first = session(total // 2 if split else threads)
    mirror = None
    if split and first.providers == ["CPUExecutionProvider"]:
        mirror = session(total - total // 2)
    return FrFeatureEmbedder(first, mirror_average=settings.mirror_average,
                             mirror_session=mirror)


class FaceEngine:
    """Detector + embedder + quality gate with the configured match threshold."""

    def __init__(self, detector: Detector, embedder: FrFeatureEmbedder,
                 settings: VisionSettings, providers: list[str]) -> None:
        self._detector = detector
        self._embedder = embedder
        self._settings = settings
        self._providers = providers

    @classmethod
    def from_settings(cls, settings: VisionSettings, *, detector: str | None = None,
                      manifest: Manifest | None = None) -> FaceEngine:
        """Load and verify every model the settings name, then warm them up."""
        manifest = manifest or load_manifest()
        model_dir = Path(settings.model_dir)
        det = build_detector(detector or settings.detector, settings, manifest, model_dir)
        embedder = build_embedder(settings, manifest, model_dir)
        engine = cls(det, embedder, settings, embedder.session.providers)
        log.info("vision_engine_ready", detector=det.name, embedder=settings.embedder,
                 providers=embedder.session.providers, parallel_mirror=embedder.parallel_mirror)
        return engine

    @property
    def detector_name(self) -> str:
        return self._detector.name

    @property
    def embedder_name(self) -> str:
        return self._embedder.name

    @property
    def threshold(self) -> float:
        return self._settings.match_threshold

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in original image coordinates, best score first."""
        faces = self._detector.detect(image_bgr)
        return sorted(faces, key=lambda f: -f.score)

    def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(len(faces), 512) float32 L2-normalised embeddings, all faces in one batch."""
        return self._embedder.embed(image_bgr, faces)

    def quality(self, image_bgr: np.ndarray, face: Face) -> Quality:
        s = self._settings
        return assess(image_bgr, face, min_face_px=s.min_face_px, max_yaw_ratio=s.max_yaw_ratio,
                      min_sharpness=s.min_sharpness)

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        """Cosine similarity of two embeddings (1 = same direction)."""
        a = np.asarray(a, np.float32).ravel()
        b = np.asarray(b, np.float32).ravel()
        denom = float(np.linalg.norm(a) * np.linalg.norm(b))
        return float(np.dot(a, b) / denom) if denom > 0 else 0.0

    def is_match(self, a: np.ndarray, b: np.ndarray) -> bool:
        return self.similarity(a, b) >= self.threshold
