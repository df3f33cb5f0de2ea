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

import math
from bisect import bisect_left
from dataclasses import dataclass, replace

from edge.vision.calibration_file import (  # re-exported: the calibration's types
    MAX_FILE_BYTES as MAX_FILE_BYTES,
)
from edge.vision.calibration_file import (
    MAX_GRID as MAX_GRID,
)
from edge.vision.calibration_file import (
    MAX_ROWS as MAX_ROWS,
)
from edge.vision.calibration_file import (
    METHOD_INDEPENDENCE as METHOD_INDEPENDENCE,
)
from edge.vision.calibration_file import (
    METHOD_SEARCH as METHOD_SEARCH,
)
from edge.vision.calibration_file import (
    MIN_ROWS as MIN_ROWS,
)
from edge.vision.calibration_file import (
    SCHEMA as SCHEMA,
)
from edge.vision.calibration_file import (
    SCHEMA_V2 as SCHEMA_V2,
)
from edge.vision.calibration_file import (
    Calibration as Calibration,
)
from edge.vision.calibration_file import (
    CalibrationError as CalibrationError,
)
from edge.vision.calibration_file import (
    OperatingPoint as OperatingPoint,
)
from edge.vision.calibration_file import (
    SearchTable as SearchTable,
)
from edge.vision.calibration_file import (
    fpir_for as fpir_for,
)
from edge.vision.calibration_file import (
    gallery_size_for as gallery_size_for,
)
from edge.vision.calibration_file import (
    load_calibration as load_calibration,
)
from edge.vision.calibration_file import (
    pair_far_for as pair_far_for,
)
from edge.vision.calibration_file import (
    parse_calibration as parse_calibration,
)
from edge.vision.manifest import Manifest


# ------------------------------------------------------------------------------- the maths
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
