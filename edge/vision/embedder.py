"""fr_feature embedder: aligned 112x112 crops -> 512-d L2-normalised embeddings.

With `mirror_average` (the default) each crop is embedded together with its horizontal mirror
and the two embeddings are summed before normalising: a cheap test-time augmentation measured
on the LFW 1:N protocol (docs/rooms/vision.md) to lower FNIR at a fixed FPIR. The impostor
calibration (models/fr_feature.impostor.json) was made with the same rule.

Given a `mirror_session` (a second session on the same verified model, as the engine opens on
the CPU provider), the crops and their mirrors run at the same time, one half of the cores
each: the same arithmetic per image, a third less time for one face with its mirror than one
two-thread run of both (measured: docs/rooms/vision.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edge.vision.align import align_face
from edge.vision.nms import check_bgr
from edge.vision.runtime import Session
from edge.vision.types import Face


class FrFeatureEmbedder:
    name = "fr_feature"
    dim = 512

    def __init__(self, session: Session, max_batch: int = 16, *,
                 mirror_average: bool = True, mirror_session: Session | None = None) -> None:
        self.session = session
        self.max_batch = max_batch
        self.mirror_average = bool(mirror_average)
        self.mirror_session = mirror_session if self.mirror_average else None
        # one worker runs the mirrors while the calling thread runs the crops (onnxruntime
        # releases the GIL while it runs); a forked child starts its own (threads do not fork)
        self._mirror_worker: ThreadPoolExecutor | None = None
        self._worker_pid = 0

    @property
    def parallel_mirror(self) -> bool:
        """Whether crops and mirrors run at the same time on two sessions."""
        return self.mirror_session is not None

    def _worker(self) -> ThreadPoolExecutor:
        if self._mirror_worker is None or self._worker_pid != os.getpid():
            self._mirror_worker = ThreadPoolExecutor(1, thread_name_prefix="embed-mirror")
            self._worker_pid = os.getpid()
        return self._mirror_worker

    def _raw(self, crops_bgr: list[np.ndarray], session: Session | None = None) -> np.ndarray:
        session = session or self.session
        out = []
        for start in range(0, len(crops_bgr), self.max_batch):
            batch = np.stack(crops_bgr[start:start + self.max_batch])[..., ::-1]
            blob = ((batch.astype(np.float32) - 127.0) / 128.0).transpose(0, 3, 1, 2)
            out.append(session.run(np.ascontiguousarray(blob))[0])
        return np.concatenate(out).astype(np.float32)

    @staticmethod
    def _unit(emb: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        unit: np.ndarray = (emb / np.maximum(norms, 1e-12)).astype(np.float32)
        return unit

    def _raw_with_mirrors(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Raw embeddings of the crops, then of their mirrors: (2n, dim)."""
        mirrors = [np.ascontiguousarray(c[:, ::-1]) for c in crops_bgr]
        if self.mirror_session is None:
            return self._raw([*crops_bgr, *mirrors])
        pending = self._worker().submit(self._raw, mirrors, self.mirror_session)
        try:
            crops = self._raw(crops_bgr)
        finally:
            mirrored = pending.result()
        return np.concatenate([crops, mirrored])

    def embed_crops(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Embed already-aligned 112x112 BGR crops (each with its mirror when configured)."""
        if not crops_bgr:
            return np.zeros((0, self.dim), np.float32)
        if not self.mirror_average:
            return self._unit(self._raw(crops_bgr))
        n = len(crops_bgr)
        both = self._unit(self._raw_with_mirrors(crops_bgr))
        return self._unit(both[:n] + both[n:])

    def embed(self, image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
        image = check_bgr(image_bgr)
        return self.embed_crops([align_face(image, f) for f in faces])
