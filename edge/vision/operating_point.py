"""1:N operating point from the embedder's impostor-score calibration (models/*.impostor.json).

The calibration file holds two tables, both measured on a labelled face set:

* `table` (schema /1 and /2): cosine threshold -> 1:1 false-match rate (FAR) over all
  different-identity pairs, with the extreme tail fitted (generalised Pareto) below the
  empirically reliable rates;
* `search` (schema /2 only): the empirical 1:N table t(N, FPIR), the threshold at which a
  non-mated search of a gallery of N identities (one template each) returns a candidate,
  P(top >= t and top - runner-up >= margin) = FPIR, averaged over random galleries (see
  `edge.vision.impostor_calibration.build_search_table`). It holds for the margin it was made
  for only.

The file is pinned like a model: `load_calibration` checks its sha256 (when given), its size and
every field strictly, and that it belongs to the installed embedder.

`operating_point_for` (the product's rule, `FpirRule`) reads the search table at
FPIR = fpir_safety x target (the file's safety factor, 0.8: the table's FPIR is an estimate on
a finite set of people), interpolating bilinearly in (log N, log FPIR). It falls back to the
independence model below, conservative, and says so in the OperatingPoint (`method`, `note`):
outside the table's grid (`in_range=False`; never below the table's own edge value, so the
threshold stays monotone), when the live margin is not the table's, or for a schema /1 file.
The table is made for templates of `enrol_images` photos (1 in the shipped file): the mean
template of 2 photos scores higher against impostors (on LFW 1.3-1.8x the FPIR at the same
threshold, +0.008..0.011 in threshold for the same FPIR at N ~ 200), which the gallery size
alone cannot tell.

Independence model: for a live gallery of N independent templates, a non-mated search
false-matches when any of the N scores reaches the threshold:

    FPIR(t, N) ~= 1 - (1 - FAR(t))**N          (FAR interpolated log-linearly in t)

so for a target FPIR the per-pair rate needed is FAR = 1 - (1 - FPIR)**(1/N) and the threshold is
the calibrated score at that rate. `threshold_for` returns the threshold with flags when the rate
(i.e. N) lies outside the calibrated table or in its fitted (not measured) tail. The margin rule
(best minus runner-up consent) only removes candidates, so it can lower FPIR, never raise it:
the model is an upper bound whatever the margin (on LFW about 1.0-1.5x the measured 1:N rate
for N of 10..2000 at margin 0.05).

Pure functions on frozen dataclasses; no I/O except `load_calibration`.
"""

from __future__ import annotations

import hashlib
import json
import math
from bisect import bisect_left
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from edge.vision.manifest import Manifest
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


MARGIN_TOLERANCE = 1e-9


def operating_point_for(cal: Calibration, target_fpir: float, gallery_size: int,
                        margin: float | None) -> OperatingPoint:
    """The product's 1:N threshold for `target_fpir`, a live gallery of `gallery_size`
    templates and the live margin: the search table where it applies, else the independence
    model (see the module docstring). Non-decreasing in N, non-increasing in the target."""
    indep = threshold_for(cal, target_fpir, gallery_size)
    table = cal.search
    if table is None:
        note = f"the calibration has no 1:N table ({SCHEMA})"
    elif margin is None:
        note = "no margin given for the 1:N table"
    elif abs(margin - table.margin) > MARGIN_TOLERANCE:
        note = (f"margin {margin:g} is not the 1:N table's {table.margin:g}: "
                "independence model")
    else:
        fpir = table.fpir_safety * target_fpir
        t, sparse = table.lookup(gallery_size, fpir)
        if table.covers(gallery_size, fpir):
            return replace(indep, threshold=t, pair_far=far_at(cal, t), in_range=True,
                           extrapolated=sparse, method=METHOD_SEARCH)
        # outside the grid: the (conservative) independence model, bounded by the table's
        # edge so that the threshold stays monotone in N and in the target
        above = gallery_size > table.gallery_sizes[-1] or fpir < table.fpirs[0]
        bounded = max(indep.threshold, t) if above else min(indep.threshold, t)
        return replace(indep, threshold=bounded, in_range=False,
                       note=f"gallery of {gallery_size} or FPIR {fpir:.3g} outside the 1:N "
                            f"table (N {table.gallery_sizes[0]}..{table.gallery_sizes[-1]}, "
                            f"FPIR {table.fpirs[0]:g}..{table.fpirs[-1]:g}): independence "
                            "model")
    return replace(indep, note=note)


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
    of N live templates searched with `margin`, from the embedder's calibration."""

    calibration: Calibration
    target_fpir: float
    margin: float | None = None  # None: the independence model (the table needs the margin)

    def __call__(self, gallery_size: int) -> OperatingPoint:
        return operating_point_for(self.calibration, self.target_fpir,
                                   max(1, int(gallery_size)), self.margin)

    @property
    def uses_search_table(self) -> bool:
        table = self.calibration.search
        return (table is not None and self.margin is not None
                and abs(self.margin - table.margin) <= MARGIN_TOLERANCE
                and table.fpirs[0] <= table.fpir_safety * self.target_fpir <= table.fpirs[-1])

    @property
    def calibrated_sizes(self) -> tuple[int, int]:
        """Gallery sizes inside the table the rule reads at this FPIR (outside: flagged)."""
        table = self.calibration.search
        if self.uses_search_table and table is not None:
            return table.gallery_sizes[0], table.gallery_sizes[-1]
        lo, hi = self.calibration.gallery_range(self.target_fpir)
        return max(1, math.ceil(lo)), max(1, math.floor(hi))


def fpir_rule(embedder: str, target_fpir: float, margin: float | None = None, *,
              manifest: Manifest | None = None) -> FpirRule:
    """The daemon's 1:N rule for `embedder` at `target_fpir` (settings consent.target_fpir)
    and the gallery's margin (settings consent.match_margin)."""
    from edge.vision.manifest import load_manifest

    return FpirRule(load_pinned_calibration(manifest or load_manifest(), embedder), target_fpir,
                    None if margin is None else float(margin))
