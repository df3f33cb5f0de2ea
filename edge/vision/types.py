"""Plain data passed between the vision room and its users (screening, lanes, kiosk).

A `Face` holds geometry only. Embeddings are numpy arrays that live in memory for one decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, TypedDict

import numpy as np

# Five landmarks in this order everywhere: right eye, left eye (as seen in the image: the
# subject's right eye is on the image's left), nose tip, right mouth corner, left mouth corner.
LANDMARK_NAMES = ("eye_right", "eye_left", "nose", "mouth_right", "mouth_left")


class FaceJson(TypedDict):
    """`Face.to_json()`: box and landmarks rounded to 0.1 px, score to 4 places."""

    box: list[float]
    score: float
    landmarks: list[list[float]]


@dataclass(frozen=True)
class Face:
    """One detected face in original image coordinates."""

    box: tuple[float, float, float, float]  # x, y, w, h
    score: float
    landmarks: np.ndarray = field(repr=False)  # (5, 2) float32, order LANDMARK_NAMES

    def to_json(self) -> FaceJson:
        x, y, w, h = self.box
        return {"box": [round(float(v), 1) for v in (x, y, w, h)],
                "score": round(float(self.score), 4),
                "landmarks": [[round(float(px), 1), round(float(py), 1)]
                              for px, py in self.landmarks]}


@dataclass(frozen=True)
class Quality:
    """Result of the quality gate: ok, or the reasons it failed (operator-readable)."""

    ok: bool
    reasons: tuple[str, ...] = ()


class Detector(Protocol):
    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 image, best first."""
        ...


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(len(faces), dim) float32 L2-normalised embeddings, one batched run."""
        ...


class FaceEngineLike(Protocol):
    """The face engine its users program against (edge.vision.engine.FaceEngine is the real
    one): detect, judge quality, embed. The one definition for the pipeline and the kiosk."""

    @property
    def embedder_name(self) -> str: ...
    def detect(self, image_bgr: np.ndarray) -> list[Face]: ...
    def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray: ...
    def quality(self, image_bgr: np.ndarray, face: Face) -> Quality: ...
