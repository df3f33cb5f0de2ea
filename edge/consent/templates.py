"""Enrolment embeddings -> template rows: checked, unit length, averaged or one each."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.consent.errors import InvalidEmbeddingError

MAX_TEMPLATES_PER_CONSENT = 3
MAX_ENROL_IMAGES = 10


def templates_from(embeddings: Sequence[np.ndarray], strategy: str) -> np.ndarray:
    """Unit float32 template rows from enrolment embeddings: one, their renormalised mean
    (`"mean"`, up to MAX_ENROL_IMAGES), or one each (`"each"`, up to
    MAX_TEMPLATES_PER_CONSENT); InvalidEmbeddingError with advice otherwise."""
    if strategy not in ("mean", "each"):
        raise InvalidEmbeddingError("strategy must be 'mean' or 'each'")
    items = list(embeddings)
    limit = MAX_ENROL_IMAGES if strategy == "mean" else MAX_TEMPLATES_PER_CONSENT
    if not 1 <= len(items) <= limit:
        raise InvalidEmbeddingError(f"enrolment takes 1-{limit} embeddings for strategy "
                                    f"'{strategy}', got {len(items)}: capture again")
    rows = []
    for item in items:
        vec = np.asarray(item, dtype=np.float64)
        if vec.ndim != 1 or not 2 <= vec.shape[0] <= 4096:
            raise InvalidEmbeddingError("each embedding must be a 1-D vector of 2-4096 "
                                        "values: pass the embedder's output")
        norm = float(np.linalg.norm(vec)) if np.all(np.isfinite(vec)) else float("nan")
        if not np.isfinite(norm) or norm < 1e-6:
            raise InvalidEmbeddingError("an embedding is not finite or has zero length: "
                                        "capture again")
        rows.append(vec / norm)
    if len({r.shape[0] for r in rows}) != 1:
        raise InvalidEmbeddingError("embeddings differ in length: use one embedder")
    matrix = np.stack(rows)
    if strategy == "mean":
        mean = matrix.mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if norm < 1e-3:
            raise InvalidEmbeddingError("the enrolment images disagree completely: capture "
                                        "again")
        matrix = (mean / norm)[None, :]
    return matrix.astype(np.float32)
