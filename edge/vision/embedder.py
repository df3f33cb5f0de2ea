"""fr_feature embedder: aligned 112x112 crops -> 512-d L2-normalised embeddings, one batch."""

from __future__ import annotations

import numpy as np

from edge.vision.align import align_face
from edge.vision.nms import check_bgr
from edge.vision.runtime import Session
from edge.vision.types import Face


class FrFeatureEmbedder:
    name = "fr_feature"
    dim = 512

    def __init__(self, session: Session, max_batch: int = 16) -> None:
        self.session = session
        self.max_batch = max_batch

    def embed_crops(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Embed already-aligned 112x112 BGR crops."""
        if not crops_bgr:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for start in range(0, len(crops_bgr), self.max_batch):
            batch = np.stack(crops_bgr[start:start + self.max_batch])[..., ::-1]
            blob = ((batch.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2)
            out.append(self.session.run(np.ascontiguousarray(blob))[0])
        emb = np.concatenate(out).astype(np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return emb / np.maximum(norms, 1e-12)

    def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
        image = check_bgr(image_bgr)
        return self.embed_crops([align_face(image, f) for f in faces])
