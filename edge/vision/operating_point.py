"""1:N operating point from the embedder's impostor-score calibration (models/*.impostor.json).

The calibration file is a compact table of (cosine threshold -> 1:1 false-match rate, FAR) measured
on all different-identity pairs of a face set, with the extreme tail fitted (generalised Pareto)
below the empirically reliable rates. It is pinned like a model: `load_calibration` checks its
sha256 (when given), its size and every field strictly, and that it belongs to the installed
embedder.

For a live gallery of N independent templates, a non-mated search false-matches when any of the
N scores reaches the threshold:

    FPIR(t, N) ~= 1 - (1 - FAR(t))**N          (FAR interpolated log-linearly in t)

so for a target FPIR the per-pair rate needed is FAR = 1 - (1 - FPIR)**(1/N) and the threshold is
the calibrated score at that rate. `threshold_for` returns the threshold with flags when the rate
(i.e. N) lies outside the calibrated table or in its fitted (not measured) tail. The margin rule
(best minus runner-up consent) only removes candidates, so it can lower FPIR, never raise it.

Pure functions on frozen dataclasses; no I/O except `load_calibration`.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.vision.manifest import Manifest
from foundation.errors import ConsentGateError

SCHEMA = "impostor-calibration/1"
MAX_FILE_BYTES = 256 * 1024
MAX_ROWS = 512
MIN_ROWS = 2
_TOP_KEYS = {"schema", "embedder", "embedder_sha256", "score", "provenance", "tail", "table"}
_PROVENANCE_KEYS = {"dataset", "images", "failure_to_acquire", "identities", "impostor_pairs",
                    "method", "date", "tool"}
_TAIL_KEYS = {"model", "threshold_u", "far_u", "shape_xi", "scale_sigma", "exceedances",
              "empirical_floor_far"}
_ROW_KEYS = {"threshold", "far", "source"}
_SCORE_KEYS = {"similarity", "mirror_average"}


class CalibrationError(ConsentGateError):
    """The impostor calibration file is missing, tampered, malformed or for another embedder."""


@dataclass(frozen=True)
class Calibration:
    """Validated calibration: thresholds strictly increasing, FAR strictly decreasing."""

    embedder: str
    embedder_sha256: str
    mirror_average: bool
    thresholds: tuple[float, ...]
    fars: tuple[float, ...]
    empirical_floor_far: float  # rates below this come from the fitted tail, not from counts
    provenance: dict[str, object]  # kept as written, not interpreted
    sha256: str

    @property
    def far_range(self) -> tuple[float, float]:
        """(smallest, largest) per-pair FAR the table covers."""
        return self.fars[-1], self.fars[0]

    def gallery_range(self, target_fpir: float) -> tuple[float, float]:
        """Gallery sizes N whose needed per-pair FAR lies inside the table for this FPIR."""
        lo_far, hi_far = self.far_range
        return gallery_size_for(target_fpir, hi_far), gallery_size_for(target_fpir, lo_far)


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    target_fpir: float
    gallery_size: int
    pair_far: float       # the per-pair FAR the threshold was derived for
    in_range: bool        # pair_far inside the calibrated table (else clamped to its end)
    extrapolated: bool    # pair_far below the empirically measured part (fitted tail)

    def to_json(self) -> dict[str, object]:
        return {"threshold": round(self.threshold, 5), "target_fpir": self.target_fpir,
                "gallery_size": self.gallery_size, "pair_far": self.pair_far,
                "in_range": self.in_range, "extrapolated": self.extrapolated}


# --------------------------------------------------------------------------------- loading
def _fail(path: Path | str, what: str) -> CalibrationError:
    return CalibrationError(f"impostor calibration {path}: {what}; regenerate it with "
                            "python -m edge.vision.impostor_calibration or reinstall the project")


def _num(value: object, path: Path | str, name: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, f"{name} must be a number")
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise _fail(path, f"{name}={value!r} is outside [{lo}, {hi}]")
    return v


def _keys(obj: object, want: set[str], path: Path | str, name: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(path, f"{name} must be an object")
    if set(obj) != want:
        extra, missing = sorted(set(obj) - want), sorted(want - set(obj))
        raise _fail(path, f"{name} keys differ (unexpected {extra}, missing {missing})")
    return obj


def parse_calibration(raw: bytes, source: Path | str = "<bytes>", *,
                      expected_sha256: str | None = None,
                      embedder_sha256: str | None = None) -> Calibration:
    """Validate the bytes of a calibration file (bounded, strict) and return it."""
    if len(raw) > MAX_FILE_BYTES:
        raise _fail(source, f"larger than {MAX_FILE_BYTES} bytes")
    digest = hashlib.sha256(raw).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise _fail(source, f"sha256 {digest} does not match the pinned {expected_sha256}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(source, f"not valid JSON ({exc})") from None
    _keys(data, _TOP_KEYS, source, "top level")
    if data["schema"] != SCHEMA:
        raise _fail(source, f"schema {data['schema']!r} is not {SCHEMA!r}")
    if not isinstance(data["embedder"], str) or not data["embedder"]:
        raise _fail(source, "embedder must be a model name")
    sha = data["embedder_sha256"]
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise _fail(source, "embedder_sha256 must be 64 lowercase hex digits")
    if embedder_sha256 is not None and sha != embedder_sha256.lower():
        raise _fail(source, f"made for embedder sha256 {sha}, installed is {embedder_sha256}")
    score = _keys(data["score"], _SCORE_KEYS, source, "score")
    if score["similarity"] != "cosine" or not isinstance(score["mirror_average"], bool):
        raise _fail(source, "score must be {similarity: cosine, mirror_average: bool}")
    prov = _keys(data["provenance"], _PROVENANCE_KEYS, source, "provenance")
    for k in ("images", "identities", "impostor_pairs", "failure_to_acquire"):
        if isinstance(prov[k], bool) or not isinstance(prov[k], int) or prov[k] < 0:
            raise _fail(source, f"provenance.{k} must be a non-negative integer")
    tail = _keys(data["tail"], _TAIL_KEYS, source, "tail")
    floor = _num(tail["empirical_floor_far"], source, "tail.empirical_floor_far", 1e-12, 1.0)
    rows = data["table"]
    if not isinstance(rows, list) or not MIN_ROWS <= len(rows) <= MAX_ROWS:
        raise _fail(source, f"table must be a list of {MIN_ROWS}..{MAX_ROWS} rows")
    thresholds: list[float] = []
    fars: list[float] = []
    for i, row in enumerate(rows):
        _keys(row, _ROW_KEYS, source, f"table[{i}]")
        t = _num(row["threshold"], source, f"table[{i}].threshold", -1.0, 1.0)
        f = _num(row["far"], source, f"table[{i}].far", 1e-15, 1.0)
        if row["source"] not in ("empirical", "tail"):
            raise _fail(source, f"table[{i}].source must be empirical or tail")
        if thresholds and not (t > thresholds[-1] and f < fars[-1]):
            raise _fail(source, f"table[{i}]: thresholds must increase and FAR decrease")
        thresholds.append(t)
        fars.append(f)
    return Calibration(embedder=data["embedder"], embedder_sha256=sha,
                       mirror_average=score["mirror_average"], thresholds=tuple(thresholds),
                       fars=tuple(fars), empirical_floor_far=floor, provenance=dict(prov),
                       sha256=digest)


def load_calibration(path: Path, *, expected_sha256: str | None = None,
                     embedder_sha256: str | None = None) -> Calibration:
    """Read, size-check, hash-check and validate a calibration file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _fail(path, "missing") from None
    except OSError as exc:
        raise _fail(path, f"unreadable ({exc.strerror})") from None
    return parse_calibration(raw, path, expected_sha256=expected_sha256,
                             embedder_sha256=embedder_sha256)


# ------------------------------------------------------------------------------- the maths
def pair_far_for(target_fpir: float, gallery_size: int) -> float:
    """Per-pair FAR giving `target_fpir` over N independent templates: 1-(1-FPIR)^(1/N)."""
    if not 0.0 < target_fpir < 1.0:
        raise ValueError("target_fpir must be in (0, 1)")
    if gallery_size < 1:
        raise ValueError("gallery_size must be >= 1")
    return -math.expm1(math.log1p(-target_fpir) / gallery_size)


def gallery_size_for(target_fpir: float, pair_far: float) -> float:
    """N (real-valued) at which a per-pair FAR reaches the target FPIR."""
    return math.log1p(-target_fpir) / math.log1p(-pair_far)


def fpir_for(pair_far: float, gallery_size: int) -> float:
    """FPIR(t, N) = 1 - (1 - FAR(t))^N."""
    return -math.expm1(gallery_size * math.log1p(-pair_far))


def far_at(cal: Calibration, threshold: float) -> float:
    """Per-pair FAR at a threshold, log-linear between rows, clamped at the table's ends."""
    ts, fs = cal.thresholds, cal.fars
    if threshold <= ts[0]:
        return fs[0]
    if threshold >= ts[-1]:
        return fs[-1]
    j = bisect_left(ts, threshold)
    t0, t1, f0, f1 = ts[j - 1], ts[j], fs[j - 1], fs[j]
    w = (threshold - t0) / (t1 - t0)
    return math.exp(math.log(f0) + w * (math.log(f1) - math.log(f0)))


def threshold_at_far(cal: Calibration, pair_far: float) -> tuple[float, bool]:
    """(threshold, in_range) for a per-pair FAR; clamped to the table's end when outside."""
    fs, ts = cal.fars, cal.thresholds
    if pair_far >= fs[0]:
        return ts[0], pair_far == fs[0]
    if pair_far <= fs[-1]:
        return ts[-1], pair_far == fs[-1]
    x = math.log(pair_far)
    # fars decrease; find j with fs[j-1] > pair_far >= fs[j]
    lo, hi = 0, len(fs) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fs[mid] > pair_far:
            lo = mid
        else:
            hi = mid
    l0, l1 = math.log(fs[lo]), math.log(fs[hi])
    w = (x - l0) / (l1 - l0)
    return ts[lo] + w * (ts[hi] - ts[lo]), True


def threshold_for(cal: Calibration, target_fpir: float, gallery_size: int) -> OperatingPoint:
    """Cosine threshold giving `target_fpir` for a live gallery of `gallery_size` templates.

    The threshold is non-decreasing in N and non-increasing in the target FPIR.
    """
    far = pair_far_for(target_fpir, gallery_size)
    t, in_range = threshold_at_far(cal, far)
    return OperatingPoint(threshold=t, target_fpir=target_fpir, gallery_size=int(gallery_size),
                          pair_far=far, in_range=in_range,
                          extrapolated=far < cal.empirical_floor_far)


def predicted_fpir(cal: Calibration, threshold: float, gallery_size: int) -> float:
    """Model FPIR of a threshold for a gallery of N (for reports and alarms)."""
    return fpir_for(far_at(cal, threshold), gallery_size)


# ------------------------------------------------------------------------ the product's rule
def load_pinned_calibration(manifest: Manifest, embedder: str) -> Calibration:
    """The calibration models/manifest.toml pins for `embedder`, verified against its sha256
    and against the embedder model's own hash (a calibration of another model is refused)."""
    spec = manifest.calibration(embedder)
    return load_calibration(spec.path, expected_sha256=spec.sha256,
                            embedder_sha256=manifest.get(embedder).sha256)


@dataclass(frozen=True)
class FpirRule:
    """The 1:N threshold rule: the threshold that keeps FPIR at `target_fpir` for a gallery
    of N live templates, from the embedder's calibration."""

    calibration: Calibration
    target_fpir: float

    def __call__(self, gallery_size: int) -> OperatingPoint:
        return threshold_for(self.calibration, self.target_fpir, max(1, int(gallery_size)))

    @property
    def calibrated_sizes(self) -> tuple[int, int]:
        """Gallery sizes inside the calibrated table at this FPIR (outside: clamped, flagged)."""
        lo, hi = self.calibration.gallery_range(self.target_fpir)
        return max(1, math.ceil(lo)), max(1, math.floor(hi))


def fpir_rule(embedder: str, target_fpir: float, manifest: Manifest | None = None) -> FpirRule:
    """The daemon's 1:N rule for `embedder` at `target_fpir` (settings consent.target_fpir)."""
    from edge.vision.manifest import load_manifest

    return FpirRule(load_pinned_calibration(manifest or load_manifest(), embedder), target_fpir)
