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

While a flight boards (`boarding()`, edge.consent.boarding, gives its consent scopes), each row's
scope code is masked like its expiry: only templates in scope can match, and the FPIR rule is
applied to the in-scope count. The rest is searched too, at the threshold for its own size, only
to tell a traveller of another flight or day ("wrong_flight") from one not enrolled, and so
that nobody passes as an in-scope traveller their own template scores no better than.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import structlog

from edge.consent.coarse import Int8Blocks
from edge.consent.errors import InvalidEmbeddingError
from edge.consent.records import TemplateRow
from edge.consent.store import ConsentStore
from edge.vision.operating_point import OperatingPoint
from foundation.clock import Clock

log = structlog.get_logger(__name__)

Reason = Literal["match", "below_threshold", "ambiguous", "empty", "wrong_flight"]
ThresholdRule = Callable[[int], OperatingPoint]  # live gallery size -> operating point
ScopeFilter = Callable[[], Collection[str] | None]  # the scopes that board now, None: all
NO_RUNNER_UP = -1.0
# A template averaged from several images scores higher against strangers than a one-photo
# template: measured on ../shared/lfw held-out halves, 1.3-1.8x the FPIR at the same threshold
# (docs/rooms/vision.md). The FPIR rule counts such a template as this many.
MEAN_TEMPLATE_WEIGHT = 1.8
INDEX_MIN = 20_000
BLOCK_ROWS = 8192


@dataclass(frozen=True)
class MatchResult:
    consent_id: str | None
    score: float
    runner_up: float
    reason: Reason
    threshold: float = math.nan  # the 1:N threshold this search applied
    # the in-scope top-1 consent even when it did not clear (multi-frame evidence compares
    # it across frames); process-local, never logged
    candidate: str | None = field(default=None, repr=False)

    @property
    def matched(self) -> bool:
        return self.reason == "match"


def _finite(score: float) -> float:
    return score if math.isfinite(score) else NO_RUNNER_UP


class Gallery:
    """Live templates of one store, matched by cosine similarity (vectors are unit length)."""

    def __init__(self, store: ConsentStore, clock: Clock, threshold: float,
                 margin: float, *, rule: ThresholdRule | None = None,
                 boarding: ScopeFilter | None = None,
                 index_min: int = INDEX_MIN, block_rows: int = BLOCK_ROWS) -> None:
        if not -1.0 < threshold < 1.0 or not 0.0 <= margin < 1.0:
            raise ValueError("threshold must be in (-1, 1) and margin in [0, 1)")
        self.index_min = max(0, int(index_min))
        self._index = Int8Blocks(block_rows)
        self._store = store
        self._clock = clock
        self.threshold = float(threshold)  # 1:1 (verify), and 1:N when no rule is given
        self.margin = float(margin)
        self._rule = rule
        self._boarding = boarding
        self._scope_key: tuple[frozenset[str], int] | None = None
        self._scope_ok = np.zeros(0, bool)
        self._operating: OperatingPoint | None = None
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
        self._scopes = np.zeros(capacity, np.int32)
        self._weights = np.zeros(capacity, np.float64)
        self._expires = np.full(capacity, -math.inf)
        self._row_of, self._code_of, self._consent_of_code = {}, {}, []
        self._scope_code: dict[str, int] = {}
        self._scope_key = None

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
            scope = self._scope_code.setdefault(r.scope, len(self._scope_code))
            i = self._n
            self._matrix[i] = r.vector
            self._ids[i], self._codes[i], self._expires[i] = r.template_id, code, r.expires_at
            self._scopes[i] = scope
            self._weights[i] = MEAN_TEMPLATE_WEIGHT if r.images > 1 else 1.0
            self._row_of[r.template_id] = i
            self._n += 1

    def _grow(self, capacity: int) -> None:
        n = self._n
        matrix = np.zeros((capacity, self._dim), np.float32)
        matrix[:n] = self._matrix[:n]
        self._matrix.fill(0)
        self._matrix = matrix
        for name, fill in (("_ids", 0), ("_codes", 0), ("_scopes", 0), ("_weights", 0.0),
                           ("_expires", -math.inf)):
            old = getattr(self, name)
            new = np.full(capacity, fill, dtype=old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)

    def _compact(self) -> None:
        keep = np.flatnonzero(self._expires[:self._n] > -math.inf)
        matrix = self._matrix[keep].copy()
        ids, codes, expires = self._ids[keep], self._codes[keep], self._expires[keep]
        self._scopes, self._weights = self._scopes[keep], self._weights[keep]
        self._matrix.fill(0)
        self._matrix, self._ids, self._codes, self._expires = matrix, ids, codes, expires
        self._n, self._dead = len(keep), 0
        self._index.clear()
        self._row_of = {int(t): i for i, t in enumerate(ids)}

    # ------------------------------------------------------------------------------ queries
    @property
    def size(self) -> int:
        """Templates that could match now (unexpired, not removed, in the boarding scope)."""
        now = self._clock.now()
        with self._lock:
            live = self._expires[:self._n] > now
            scope = self._in_scope(self._n)
            return int(np.count_nonzero(live if scope is None else live & scope))

    @property
    def effective_size(self) -> int:
        """The gallery size the FPIR rule is read at: in-scope live templates, each template
        averaged from several images counted as MEAN_TEMPLATE_WEIGHT."""
        now = self._clock.now()
        with self._lock:
            live = self._expires[:self._n] > now
            scope = self._in_scope(self._n)
            return self._weighted(live if scope is None else live & scope)

    def _weighted(self, mask: np.ndarray) -> int:
        return math.ceil(float(self._weights[:mask.shape[0]][mask].sum()) - 1e-9)

    def _in_scope(self, n: int) -> np.ndarray | None:
        """Rows whose consent scope boards now, or None when no flight is set (lock held)."""
        scopes = self._boarding() if self._boarding is not None else None
        if not scopes:
            return None
        key = (frozenset(scopes), len(self._scope_code))
        if key != self._scope_key:
            ok = np.zeros(len(self._scope_code), bool)
            for scope in key[0]:
                if (code := self._scope_code.get(scope)) is not None:
                    ok[code] = True
            self._scope_key, self._scope_ok = key, ok
        return self._scope_ok[self._scopes[:n]]

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

    def operating_point(self, gallery_size: int | None = None) -> OperatingPoint | None:
        """The 1:N operating point for `gallery_size` live templates (default: now), or None
        when the gallery runs on a fixed threshold."""
        if self._rule is None:
            return None
        return self._rule(self.effective_size if gallery_size is None else gallery_size)

    def _threshold_1n(self, live: int) -> float:
        if self._rule is None:
            return self.threshold
        point = self._rule(live)
        last = self._operating
        if last is None or last.gallery_size != point.gallery_size:
            self._operating = point
            if last is None or round(last.threshold, 3) != round(point.threshold, 3) \
                    or last.in_range != point.in_range:
                log.info("gallery_operating_point", threshold=round(point.threshold, 4),
                         gallery_size=point.gallery_size, target_fpir=point.target_fpir,
                         in_range=point.in_range, extrapolated=point.extrapolated)
        return point.threshold

    @property
    def current_operating_point(self) -> OperatingPoint | None:
        """The operating point the last 1:N search used (None before the first or if fixed)."""
        return self._operating

    def match(self, probe: np.ndarray) -> MatchResult:
        """1:N: the best live template in the boarding scope, if it clears the threshold (set
        by the FPIR rule for the in-scope gallery size) and beats the best template of any
        other consent by the margin; "wrong_flight" when a template out of scope clears the
        threshold for the out-of-scope size and beats every other consent by the margin."""
        now = self._clock.now()
        with self._lock:
            vec = self._probe(probe)
            n = self._n
            inside = self._expires[:n] > now
            scope = self._in_scope(n)
            outside = None if scope is None else inside & ~scope
            if scope is not None:
                inside &= scope
            n_in = int(np.count_nonzero(inside))
            n_out = 0 if outside is None else int(np.count_nonzero(outside))
            if n_in + n_out == 0:
                return MatchResult(None, NO_RUNNER_UP, NO_RUNNER_UP, "empty")
            threshold = self._threshold_1n(self._weighted(inside)) if n_in else math.nan
            scores = None if self._index.sealed_rows else self._matrix[:n] @ vec
            best = self._search(vec, inside, n, scores) if n_in else None
            far = self._search(vec, outside, n, scores) if outside is not None and n_out \
                else None
            far_threshold = (self._threshold_for(self._weighted(outside)) if far is not None
                             and outside is not None else math.inf)
            candidate = self._consent_of_code[best[1]] if best is not None else None
        score, runner = (best[0], best[2]) if best is not None else (-math.inf, -math.inf)
        if far is not None and far[0] >= far_threshold and far[0] > score - self.margin:
            rival = max(score, far[2])  # another flight's traveller scores as well or better
            if far[0] - rival >= self.margin:
                return MatchResult(None, far[0], _finite(rival), "wrong_flight", far_threshold,
                                   candidate)
            return MatchResult(None, max(score, far[0]), _finite(min(score, far[0])),
                               "ambiguous", threshold, candidate)
        if best is None:
            return MatchResult(None, NO_RUNNER_UP, NO_RUNNER_UP, "empty")
        runner_up = _finite(runner)
        if score < threshold:
            return MatchResult(None, score, runner_up, "below_threshold", threshold, candidate)
        if math.isfinite(runner) and score - runner < self.margin:
            return MatchResult(None, score, runner_up, "ambiguous", threshold, candidate)
        return MatchResult(candidate, score, runner_up, "match", threshold, candidate)

    def _threshold_for(self, size: int) -> float:
        return self.threshold if self._rule is None else self._rule(size).threshold

    def _search(self, vec: np.ndarray, mask: np.ndarray, n: int,
                scores: np.ndarray | None) -> tuple[float, int, float]:
        """(best score, its consent code, best score of another consent) among `mask` rows;
        `scores` are every row's exact scores (exhaustive), or None (two-stage)."""
        if scores is None:
            return self._two_stage(vec, mask, n)
        masked = np.where(mask, scores, -np.inf)
        top = int(np.argmax(masked))
        code = int(self._codes[top])
        others = masked[self._codes[:n] != code]
        runner = float(others.max()) if others.size else -math.inf
        return float(masked[top]), code, runner

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
