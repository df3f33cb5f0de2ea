"""The impostor-calibration file (models/*.impostor.json): its types, strict bounded parsing,
and the independence model's three formulas the types need (see edge.vision.operating_point).

`load_calibration` checks the file's size, its sha256 (when given), every field strictly, and
that it belongs to the installed embedder; nothing else here does I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from foundation.errors import ConsentGateError

SCHEMA = "impostor-calibration/1"     # pair table only (still read)
SCHEMA_V2 = "impostor-calibration/2"  # pair table and the empirical 1:N search table
MAX_FILE_BYTES = 256 * 1024
MAX_ROWS = 512
MIN_ROWS = 2
MAX_GRID = 32  # gallery sizes, and FPIRs, in the search table
_TOP_KEYS = {"schema", "embedder", "embedder_sha256", "score", "provenance", "tail", "table"}
_SEARCH_KEYS = {"statistic", "margin", "enrol_images", "fpir_safety", "min_probes_eff",
                "gallery_sizes", "fpir", "thresholds", "probes_eff", "counts", "method"}
_COUNT_KEYS = {"identities", "probe_images", "template_draws", "seed"}
_PROVENANCE_KEYS = {"dataset", "images", "failure_to_acquire", "identities", "impostor_pairs",
                    "method", "date", "tool"}
_TAIL_KEYS = {"model", "threshold_u", "far_u", "shape_xi", "scale_sigma", "exceedances",
              "empirical_floor_far"}
_ROW_KEYS = {"threshold", "far", "source"}
_SCORE_KEYS = {"similarity", "mirror_average"}


class CalibrationError(ConsentGateError):
    """The impostor calibration file is missing, tampered, malformed or for another embedder."""


@dataclass(frozen=True)
class SearchTable:
    """Validated empirical 1:N table: thresholds[i][j] for gallery_sizes[i] and fpirs[j],
    non-decreasing in N and non-increasing in FPIR."""

    margin: float
    enrol_images: int  # photos averaged into each gallery template the table was made with
    fpir_safety: float
    min_probes_eff: int
    gallery_sizes: tuple[int, ...]
    fpirs: tuple[float, ...]
    thresholds: tuple[tuple[float, ...], ...]
    probes_eff: tuple[tuple[int, ...], ...]  # probe images a cell effectively rests on
    counts: dict[str, int]

    def covers(self, gallery_size: float, fpir: float) -> bool:
        return (self.gallery_sizes[0] <= gallery_size <= self.gallery_sizes[-1]
                and self.fpirs[0] <= fpir <= self.fpirs[-1])

    def lookup(self, gallery_size: float, fpir: float) -> tuple[float, bool]:
        """(threshold, sparse): bilinear in (log N, log FPIR), clamped to the grid; sparse when
        a cell it uses rests on fewer than `min_probes_eff` probe images."""
        i, u = _bracket(self.gallery_sizes, gallery_size)
        j, w = _bracket(self.fpirs, fpir)
        t = self.thresholds
        value = ((1 - u) * ((1 - w) * t[i][j] + w * t[i][j + 1])
                 + u * ((1 - w) * t[i + 1][j] + w * t[i + 1][j + 1]))
        used = [(a, b) for a, wa in ((i, 1 - u), (i + 1, u)) if wa > 0
                for b, wb in ((j, 1 - w), (j + 1, w)) if wb > 0]
        sparse = any(self.probes_eff[a][b] < self.min_probes_eff for a, b in used)
        return value, sparse


def _bracket(grid: tuple[float, ...] | tuple[int, ...], x: float) -> tuple[int, float]:
    """(i, weight of grid[i+1]) for x clamped to the grid, linear in log x."""
    x = min(max(x, grid[0]), grid[-1])
    i = min(max(bisect_left(grid, x) - 1, 0), len(grid) - 2)
    lo, hi = math.log(grid[i]), math.log(grid[i + 1])
    return i, min(max((math.log(x) - lo) / (hi - lo), 0.0), 1.0)


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
    search: SearchTable | None = None  # the empirical 1:N table (schema /2)

    @property
    def far_range(self) -> tuple[float, float]:
        """(smallest, largest) per-pair FAR the table covers."""
        return self.fars[-1], self.fars[0]

    def gallery_range(self, target_fpir: float) -> tuple[float, float]:
        """Gallery sizes N whose needed per-pair FAR lies inside the table for this FPIR."""
        lo_far, hi_far = self.far_range
        return gallery_size_for(target_fpir, hi_far), gallery_size_for(target_fpir, lo_far)


METHOD_SEARCH = "search_table"    # the empirical 1:N table
METHOD_INDEPENDENCE = "independence"  # 1 - (1 - FAR)^N from the pair table


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    target_fpir: float
    gallery_size: int
    pair_far: float       # search table: the pair FAR at the threshold; else the one derived
    in_range: bool        # inside the table the method reads (else clamped / bounded, flagged)
    extrapolated: bool    # resting on few probe images (search) or on the fitted pair tail
    method: str = METHOD_INDEPENDENCE
    note: str = ""        # why the independence model was used ("" when it was not)

    def to_json(self) -> dict[str, object]:
        return {"threshold": round(self.threshold, 5), "target_fpir": self.target_fpir,
                "gallery_size": self.gallery_size, "pair_far": self.pair_far,
                "in_range": self.in_range, "extrapolated": self.extrapolated,
                "method": self.method, "note": self.note}


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
    if not isinstance(data, dict) or data.get("schema") not in (SCHEMA, SCHEMA_V2):
        schema = data.get("schema") if isinstance(data, dict) else None
        raise _fail(source, f"schema {schema!r} is not {SCHEMA!r} or {SCHEMA_V2!r}")
    v2 = data["schema"] == SCHEMA_V2
    _keys(data, _TOP_KEYS | ({"search"} if v2 else set()), source, "top level")
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
                       sha256=digest,
                       search=_parse_search(data["search"], source) if v2 else None)


def _int(value: object, path: Path | str, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(path, f"{name} must be an integer in [{lo}, {hi}]")
    return value


def _parse_search(obj: object, source: Path | str) -> SearchTable:
    sec = _keys(obj, _SEARCH_KEYS, source, "search")
    if sec["statistic"] != "top1_with_margin":
        raise _fail(source, "search.statistic must be top1_with_margin")
    if not isinstance(sec["method"], str) or not 0 < len(sec["method"]) <= 4000:
        raise _fail(source, "search.method must be a description")
    margin = _num(sec["margin"], source, "search.margin", 0.0, 0.999)
    safety = _num(sec["fpir_safety"], source, "search.fpir_safety", 0.01, 1.0)
    enrol_images = _int(sec["enrol_images"], source, "search.enrol_images", 1, 10)
    min_eff = _int(sec["min_probes_eff"], source, "search.min_probes_eff", 1, 10**6)
    counts = _keys(sec["counts"], _COUNT_KEYS, source, "search.counts")
    for k in _COUNT_KEYS:
        _int(counts[k], source, f"search.counts.{k}", 0, 10**12)
    sizes, fpirs = sec["gallery_sizes"], sec["fpir"]
    for name, grid in (("gallery_sizes", sizes), ("fpir", fpirs)):
        if not isinstance(grid, list) or not 2 <= len(grid) <= MAX_GRID:
            raise _fail(source, f"search.{name} must be a list of 2..{MAX_GRID} values")
    ns = [_int(n, source, f"search.gallery_sizes[{i}]", 1, 10**9) for i, n in enumerate(sizes)]
    fs = [_num(f, source, f"search.fpir[{i}]", 1e-9, 0.5) for i, f in enumerate(fpirs)]
    if any(b <= a for a, b in pairwise(ns)) or any(b <= a for a, b in pairwise(fs)):
        raise _fail(source, "search.gallery_sizes and search.fpir must increase")
    grids: list[list[list[float]]] = []
    for name, lo, hi in (("thresholds", -1.0, 1.0), ("probes_eff", 0, 10**12)):
        rows = sec[name]
        if not isinstance(rows, list) or len(rows) != len(ns) or any(
                not isinstance(r, list) or len(r) != len(fs) for r in rows):
            raise _fail(source, f"search.{name} must be {len(ns)} rows of {len(fs)} values")
        if name == "probes_eff":
            grids.append([[float(_int(x, source, f"search.{name}[{i}][{j}]", 0, 10**12))
                           for j, x in enumerate(r)] for i, r in enumerate(rows)])
        else:
            grids.append([[_num(x, source, f"search.{name}[{i}][{j}]", lo, hi)
                           for j, x in enumerate(r)] for i, r in enumerate(rows)])
    thr, eff = grids
    for i, r in enumerate(thr):
        if any(b > a for a, b in pairwise(r)):
            raise _fail(source, f"search.thresholds[{i}] must not increase with the FPIR")
        if i and any(b < a for a, b in zip(thr[i - 1], r, strict=True)):
            raise _fail(source, f"search.thresholds[{i}] must not decrease with the gallery size")
    return SearchTable(margin=margin, enrol_images=enrol_images, fpir_safety=safety,
                       min_probes_eff=min_eff,
                       gallery_sizes=tuple(ns), fpirs=tuple(fs),
                       thresholds=tuple(tuple(r) for r in thr),
                       probes_eff=tuple(tuple(int(x) for x in r) for r in eff),
                       counts={k: int(counts[k]) for k in sorted(_COUNT_KEYS)})


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
