"""fr_feature embedder: aligned 112x112 crops -> 512-d L2-normalised embeddings, one batch.

With `mirror_average` (the default) each crop is embedded together with its horizontal mirror
in the same batch and the two embeddings are summed before normalising: a cheap test-time
augmentation measured on the LFW 1:N protocol (docs/rooms/vision.md) to lower FNIR at a fixed
FPIR. The impostor calibration (models/fr_feature.impostor.json) was made with the same rule.
"""

from __future__ import annotations

import numpy as np

from edge.vision.align import align_face
from edge.vision.nms import check_bgr
from edge.vision.runtime import Session
from edge.vision.types import Face


class FrFeatureEmbedder:
    name = "fr_feature"
    dim = 512

    def __init__(self, session: Session, max_batch: int = 16, *,
                 mirror_average: bool = True) -> None:
        self.session = session
        self.max_batch = max_batch
        self.mirror_average = bool(mirror_average)

    def _raw(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(crops_bgr), self.max_batch):
            batch = np.stack(crops_bgr[start:start + self.max_batch])[..., ::-1]
            blob = ((batch.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2)
            out.append(self.session.run(np.ascontiguousarray(blob))[0])
        return np.concatenate(out).astype(np.float32)

    @staticmethod
    def _unit(emb: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        unit: np.ndarray = (emb / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def embed_crops(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Embed already-aligned 112x112 BGR crops (each with its mirror when configured)."""
        if not crops_bgr:
            return np.zeros((0, self.dim), np.float32)
        if not self.mirror_average:
            return self._unit(self._raw(crops_bgr))
        n = len(crops_bgr)
        both = self._unit(self._raw([*crops_bgr, *(np.ascontiguousarray(c[:, ::-1])
                                                   for c in crops_bgr)]))
        return self._unit(both[:n] + both[n:])

    def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
        image = check_bgr(image_bgr)
        return self.embed_crops([align_face(image, f) for f in faces])
