"""The in-memory gallery of opted-in templates: 1:N top-1 with threshold and margin, and 1:1.

A float32 matrix of the store's live templates, kept up to date incrementally from the store's
change log (new rows appended, removed rows zeroed and masked, compaction when many are dead).
Expiry is re-checked at match time, so an expired template never matches even before the purge
runs. Probes are compared in memory and never kept.

From `index_min` templates on, 1:N runs in two stages: certified int8 bounds for every row
(`edge.consent.coarse`) pick the rows that could be the best template or the best template of
another consent, and only those are re-scored exactly in float32. The bounds are guarantees, not
estimates, so the result (best, runner-up, threshold and margin decision) is the exhaustive
search's; below `index_min` the exhaustive float32 search runs directly.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Literal

import numpy as np
import structlog

from edge.consent.coarse import Int8Blocks
from edge.consent.errors import InvalidEmbeddingError
from edge.consent.records import TemplateRow
from edge.consent.store import ConsentStore
from foundation.clock import Clock

log = structlog.get_logger(__name__)

Reason = Literal["match", "below_threshold", "ambiguous", "empty"]
NO_RUNNER_UP = -1.0
INDEX_MIN = 20_000
BLOCK_ROWS = 8192


@dataclass(frozen=True)
class MatchResult:
    consent_id: str | None
    score: float
    runner_up: float
    reason: Reason

    @property
    def matched(self) -> bool:
        return self.reason == "match"


class Gallery:
    """Live templates of one store, matched by cosine similarity (vectors are unit length)."""

    def __init__(self, store: ConsentStore, clock: Clock, threshold: float,
                 margin: float, *, index_min: int = INDEX_MIN,
                 block_rows: int = BLOCK_ROWS) -> None:
        if not -1.0 < threshold < 1.0 or not 0.0 <= margin < 1.0:
            raise ValueError("threshold must be in (-1, 1) and margin in [0, 1)")
        self.index_min = max(0, int(index_min))
        self._index = Int8Blocks(block_rows)
        self._store = store
        self._clock = clock
        self.threshold = float(threshold)
        self.margin = float(margin)
        self._lock = threading.Lock()
        self._dim = 0
        self._n = 0
        self._matrix = np.zeros((0, 0), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._codes = np.zeros(0, np.int64)
        self._expires = np.zeros(0, np.float64)
        self._row_of: dict[int, int] = {}
        self._code_of: dict[str, int] = {}
        self._consent_of_code: list[str] = []
        self._dead = 0
        self._generation = -1
        self.reload()
        store.changes.add_listener(self.refresh)

    def close(self) -> None:
        """Stop following the store and drop every template from memory."""
        self._store.changes.remove_listener(self.refresh)
        with self._lock:
            self._matrix.fill(0)
            self._reset(0)

    # ------------------------------------------------------------------------- maintenance
    def _reset(self, dim: int, capacity: int = 0) -> None:
        self._index.clear()
        self._dim, self._n, self._dead = dim, 0, 0
        self._matrix = np.zeros((capacity, dim), np.float32)
        self._ids = np.zeros(capacity, np.int64)
        self._codes = np.zeros(capacity, np.int64)
        self._expires = np.full(capacity, -math.inf)
        self._row_of, self._code_of, self._consent_of_code = {}, {}, []

    def reload(self) -> None:
        """Rebuild from the store's live templates."""
        generation = self._store.changes.generation
        rows = self._store.active_templates()
        with self._lock:
            self._matrix.fill(0)
            self._reset(rows[0].vector.shape[0] if rows else 0, len(rows))
            self._append(rows)
            self._sync_index()
            self._generation = generation
        log.info("gallery_loaded", templates=len(rows))

    def refresh(self) -> None:
        """Apply the store's changes since the last refresh (listener callback)."""
        change = self._store.changes.since(self._generation)
        if change is None:
            self.reload()
            return
        generation, added, removed = change
        rows = self._store.templates_by_ids(added) if added else []
        with self._lock:
            for tid in removed:
                row = self._row_of.pop(tid, None)
                if row is not None:
                    self._expires[row] = -math.inf
                    self._matrix[row] = 0.0
                    self._index.invalidate(row)
                    self._dead += 1
            self._append([r for r in rows if r.template_id not in self._row_of])
            self._generation = max(self._generation, generation)
            if self._dead > max(256, self._n // 4):
                self._compact()
            self._sync_index()

    def _sync_index(self) -> None:
        """Keep the int8 index in step with the matrix (only for galleries it pays off for)."""
        if self._n >= self.index_min:
            self._index.sync(self._matrix, self._n)
        else:
            self._index.clear()

    def _append(self, rows: list[TemplateRow]) -> None:
        if not rows:
            return
        if self._n == 0 and self._dim != rows[0].vector.shape[0]:
            self._reset(rows[0].vector.shape[0], len(rows))
        rows = [r for r in rows if r.vector.shape[0] == self._dim]
        need = self._n + len(rows)
        if need > self._matrix.shape[0]:
            self._grow(max(need, 2 * self._matrix.shape[0], 64))
        for r in rows:
            code = self._code_of.get(r.consent_id)
            if code is None:
                code = self._code_of[r.consent_id] = len(self._consent_of_code)
                self._consent_of_code.append(r.consent_id)
            i = self._n
            self._matrix[i] = r.vector
            self._ids[i], self._codes[i], self._expires[i] = r.template_id, code, r.expires_at
            self._row_of[r.template_id] = i
            self._n += 1

    def _grow(self, capacity: int) -> None:
        n = self._n
        matrix = np.zeros((capacity, self._dim), np.float32)
        matrix[:n] = self._matrix[:n]
        self._matrix.fill(0)
        self._matrix = matrix
        for name, fill in (("_ids", 0), ("_codes", 0), ("_expires", -math.inf)):
            old = getattr(self, name)
            new = np.full(capacity, fill, dtype=old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)

    def _compact(self) -> None:
        keep = np.flatnonzero(self._expires[:self._n] > -math.inf)
        matrix = self._matrix[keep].copy()
        ids, codes, expires = self._ids[keep], self._codes[keep], self._expires[keep]
        self._matrix.fill(0)
        self._matrix, self._ids, self._codes, self._expires = matrix, ids, codes, expires
        self._n, self._dead = len(keep), 0
        self._index.clear()
        self._row_of = {int(t): i for i, t in enumerate(ids)}

    # ------------------------------------------------------------------------------ queries
    @property
    def size(self) -> int:
        """Templates that could match now (unexpired, not removed)."""
        now = self._clock.now()
        with self._lock:
            return int(np.count_nonzero(self._expires[:self._n] > now))

    def _probe(self, probe: np.ndarray) -> np.ndarray:
        vec = np.asarray(probe, dtype=np.float32)
        if vec.ndim != 1 or (self._dim and vec.shape[0] != self._dim):
            want = self._dim or "the gallery's"
            raise InvalidEmbeddingError(f"probe must be a 1-D vector of {want} values: pass "
                                        "the embedder's output")
        norm = float(np.linalg.norm(vec))
        if not math.isfinite(norm) or norm < 1e-6:
            raise InvalidEmbeddingError("probe is not finite or has zero length")
        return vec / norm

    def match(self, probe: np.ndarray) -> MatchResult:
        """1:N: the best live template, if it clears the threshold and beats the best template
        of any other consent by the margin."""
        now = self._clock.now()
        with self._lock:
            vec = self._probe(probe)
            n = self._n
            live = self._expires[:n] > now
            if n == 0 or not live.any():
                return MatchResult(None, NO_RUNNER_UP, NO_RUNNER_UP, "empty")
            if self._index.sealed_rows:
                score, code, runner = self._two_stage(vec, live, n)
            else:
                scores = self._matrix[:n] @ vec
                scores[~live] = -np.inf
                best = int(np.argmax(scores))
                code = int(self._codes[best])
                others = scores[self._codes[:n] != code]
                runner = float(others.max()) if others.size else -math.inf
                score = float(scores[best])
            consent_id = self._consent_of_code[code]
        runner_up = runner if math.isfinite(runner) else NO_RUNNER_UP
        if score < self.threshold:
            return MatchResult(None, score, runner_up, "below_threshold")
        if math.isfinite(runner) and score - runner < self.margin:
            return MatchResult(None, score, runner_up, "ambiguous")
        return MatchResult(consent_id, score, runner_up, "match")

    def _two_stage(self, vec: np.ndarray, live: np.ndarray, n: int) -> tuple[float, int, float]:
        """(best score, its consent code, best score of another consent), exactly as the
        exhaustive search, re-scoring only rows whose upper bound reaches tau.

        tau is the second-highest lower bound among distinct consents (A, B). The true best row
        scores >= lb(A) >= tau; the true runner-up's consent differs from the best's, so one of
        A, B is of another consent and the runner-up scores >= tau too. Rows whose upper bound
        is below tau can therefore be neither.
        """
        sealed = self._index.sealed_rows
        lower, upper = np.empty(n, np.float32), np.empty(n, np.float32)
        self._index.bounds(vec, lower, upper)
        lower[sealed:] = upper[sealed:] = self._matrix[sealed:n] @ vec
        dead = ~live
        lower[dead] = -np.inf
        upper[dead] = -np.inf
        codes = self._codes[:n]
        a = int(np.argmax(lower))
        other = np.where(codes != codes[a], lower, -np.inf).max()
        tau = other if math.isfinite(other) else lower[a]
        cand = np.flatnonzero(upper >= tau)
        exact = self._matrix[cand] @ vec
        exact[~live[cand]] = -np.inf
        top = int(np.argmax(exact))
        code = int(codes[cand[top]])
        others = exact[codes[cand] != code]
        runner = float(others.max()) if others.size else -math.inf
        return float(exact[top]), code, runner

    def verify(self, probe: np.ndarray, consent_id: str) -> MatchResult:
        """1:1 against the live templates of one consent."""
        now = self._clock.now()
        with self._lock:
            vec = self._probe(probe)
            code = self._code_of.get(str(consent_id))
            n = self._n
            if code is None:
                return MatchResult(None, NO_RUNNER_UP, NO_RUNNER_UP, "empty")
            rows = np.flatnonzero((self._codes[:n] == code) & (self._expires[:n] > now))
            if rows.size == 0:
                return MatchResult(None, NO_RUNNER_UP, NO_RUNNER_UP, "empty")
            score = float((self._matrix[rows] @ vec).max())
        if score < self.threshold:
            return MatchResult(None, score, NO_RUNNER_UP, "below_threshold")
        return MatchResult(str(consent_id), score, NO_RUNNER_UP, "match")
