"""Inner-canthus temperature estimate, per-track fusion and the pass/refer/unreliable decision.

Per frame: the blackbody ROI's median against its set point gives the frame's drift; each face's
eye landmarks are mapped into the thermal frame through the calibration homography; the box
spanning both inner canthi (a quarter of the eye gap inwards from each eye, widened by a margin
that absorbs parallax and landmark error) is searched; single or paired hot pixels (hotter
than the median of their 8 neighbours by `hot_pixel_c`) are replaced by that median; the
hottest pixel of a copy smoothed at a scale well inside the canthus hot spot (SMOOTH_FRACTION
of the eye gap) is the canthus statistic; minus the drift it is the reading.

Per track (`ThermalScreener.new_track()`): the median of the last `fuse_frames` good readings,
after dropping those more than `outlier_c` from their median, plus the calibration's
canthus-to-core offset, against the threshold: absolute (`threshold_c`) or baseline-relative
(running median of recent passes + `baseline_delta_c`, absolute until the baseline has
`BASELINE_MIN` passes). Readings carry no identity; the baseline keeps temperatures only.
Screening is triage: a `refer` sends the traveller to a clinical thermometer.
"""

from __future__ import annotations

import statistics
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import structlog

from edge.capture.thermal import CK_AT_0C, ThermalFrameError, check_thermal
from edge.screening.calibration import Calibration
from edge.vision.types import Face
from foundation.settings import ThermalSettings

log = structlog.get_logger(__name__)

# Reason codes of an unreliable reading or decision, with what the operator should do.
REASONS: dict[str, str] = {
    "too_few_pixels": "too few thermal pixels across the eyes: the traveller should step closer",
    "outside_thermal_view": "the eyes are outside the thermal camera's view",
    "blackbody_not_visible": "the blackbody reference is hidden or uneven: clear its view",
    "blackbody_out_of_range": "the blackbody reads far from its set point: check it, recalibrate",
    "saturated": "saturated thermal pixels at the eyes or the reference: check the camera gain",
    "bad_landmarks": "the face's eye landmarks are missing or invalid",
    "too_few_readings": "not enough good thermal readings yet for this traveller",
}

CANTHUS_FRACTION = 0.25  # inner canthus: this share of the eye gap inwards from each eye
SEARCH_MARGIN = 0.22  # search box margin around both canthi, as a share of the eye gap
BASELINE_MIN = 5  # passes needed before baseline mode replaces the absolute threshold

SMOOTH_FRACTION = 0.02  # smoothing sigma as a share of the eye gap: well inside the ~3-5 mm
#                         hot spot of the canthus (eye gap ~63 mm), so it averages noise only

Status = Literal["ok", "unreliable"]
Verdict = Literal["pass", "refer", "unreliable"]


@dataclass(frozen=True)
class Reading:
    """One face in one thermal frame: corrected canthus temperature, or why there is none."""

    canthus_c: float | None
    status: Status
    reason: str | None = None

    @classmethod
    def unreliable(cls, reason: str) -> Reading:
        return cls(None, "unreliable", reason)


@dataclass(frozen=True)
class Decision:
    """A track's screening result: pass, refer (secondary screening), or unreliable + why."""

    status: Verdict
    canthus_c: float | None
    reason: str | None = None


def neighbour_median(p: np.ndarray) -> np.ndarray:
    """Median of each pixel's 8 neighbours (edges mirrored without repeating the edge)."""
    padded = cv2.copyMakeBorder(p, 1, 1, 1, 1, cv2.BORDER_REFLECT_101)
    h, w = p.shape
    ring = [padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)
            if (dy, dx) != (1, 1)]
    return np.median(np.stack(ring), axis=0)


def canthus_statistic(patch_ck: np.ndarray, hot_pixel_ck: float, smooth_sigma: float) -> float:
    """Robust hot statistic of a patch (with a 1-pixel border that is context only), in ck:
    pixels hotter than their neighbours' median by `hot_pixel_ck` (single or paired defects)
    take that median; then the hottest pixel of a Gaussian-smoothed copy (`smooth_sigma` px,
    none below 0.3 px)."""
    p: np.ndarray = patch_ck.astype(np.float32)
    med = neighbour_median(p)
    p = np.where(p > med + hot_pixel_ck, med, p).astype(np.float32)
    if smooth_sigma >= 0.3:
        k = 2 * int(np.ceil(2.5 * smooth_sigma)) + 1
        p = cv2.GaussianBlur(p, (k, k), smooth_sigma, borderType=cv2.BORDER_REFLECT_101)
    return float(p[1:-1, 1:-1].max())


class ThermalScreener:
    """Measures canthus temperatures in radiometric frames and keeps the baseline of passes."""

    def __init__(self, calibration: Calibration, settings: ThermalSettings) -> None:
        self.calibration = calibration
        self.settings = settings
        self._passes: deque[float] = deque(maxlen=settings.baseline_window)
        self._lock = threading.Lock()

    # ---- per frame ---------------------------------------------------------------------------
    def measure(self, faces: list[Face], thermal_frame_ck: np.ndarray) -> list[Reading]:
        """One Reading per face, in order. ThermalFrameError when the frame itself is unusable
        (not uint16 single-channel, or not the calibrated size)."""
        frame = check_thermal(thermal_frame_ck)
        tw, th = self.calibration.thermal_size
        if frame.shape != (th, tw):
            raise ThermalFrameError(f"thermal frame is {frame.shape[1]}x{frame.shape[0]} but the "
                                    f"calibration is for {tw}x{th}: recalibrate for this camera")
        drift_c, bb_reason = self._blackbody_drift(frame)
        return [self._measure_face(face, frame, drift_c, bb_reason) for face in faces]

    def _blackbody_drift(self, frame: np.ndarray) -> tuple[float, str | None]:
        x, y, w, h = self.calibration.blackbody_roi
        roi = frame[y:y + h, x:x + w]
        lo, hi = self.calibration.valid_range_ck
        if (roi <= lo).any() or (roi >= hi).any():
            return 0.0, "saturated"
        p10, p50, p90 = np.percentile(roi, (10, 50, 90))
        if (p90 - p10) / 100.0 > self.settings.blackbody_max_spread_c:
            return 0.0, "blackbody_not_visible"
        drift = (p50 - CK_AT_0C) / 100.0 - self.calibration.blackbody_c
        if abs(drift) > self.settings.blackbody_max_drift_c:
            return drift, "blackbody_out_of_range"
        return float(drift), None

    def _measure_face(self, face: Face, frame: np.ndarray, drift_c: float,
                      bb_reason: str | None) -> Reading:
        eyes = np.asarray(face.landmarks, dtype=np.float64)[:2]
        if eyes.shape != (2, 2) or not np.isfinite(eyes).all():
            return Reading.unreliable("bad_landmarks")
        te = self.calibration.to_thermal(eyes)
        if not np.isfinite(te).all():
            return Reading.unreliable("outside_thermal_view")
        span = float(np.linalg.norm(te[1] - te[0]))
        h, w = frame.shape
        mid = te.mean(axis=0)
        if not (0 <= mid[0] < w and 0 <= mid[1] < h):
            return Reading.unreliable("outside_thermal_view")
        if span < self.settings.min_eye_span_px:
            return Reading.unreliable("too_few_pixels")
        canthi = np.stack([te[0] + CANTHUS_FRACTION * (te[1] - te[0]),
                           te[1] + CANTHUS_FRACTION * (te[0] - te[1])])
        margin = max(2.0, SEARCH_MARGIN * span)
        x0 = int(np.floor(canthi[:, 0].min() - margin)) - 1
        x1 = int(np.ceil(canthi[:, 0].max() + margin)) + 2
        y0 = int(np.floor(canthi[:, 1].min() - margin)) - 1
        y1 = int(np.ceil(canthi[:, 1].max() + margin)) + 2
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            return Reading.unreliable("outside_thermal_view")
        patch = frame[y0:y1, x0:x1]
        lo, hi = self.calibration.valid_range_ck
        if (patch <= lo).any() or (patch >= hi).any():
            return Reading.unreliable("saturated")
        if bb_reason is not None:
            return Reading.unreliable(bb_reason)
        stat_ck = canthus_statistic(patch, self.settings.hot_pixel_c * 100.0,
                                    SMOOTH_FRACTION * span)
        canthus = (stat_ck - CK_AT_0C) / 100.0 - drift_c
        return Reading(round(canthus, 2), "ok", None)

    # ---- per track ---------------------------------------------------------------------------
    def new_track(self) -> TrackFusion:
        """A fusion for one track (no identity: it only holds this track's readings)."""
        return TrackFusion(self)

    def threshold_c(self) -> float:
        """The core-temperature threshold in force now (absolute, or baseline + delta)."""
        s = self.settings
        if s.mode == "baseline":
            with self._lock:
                passes = list(self._passes)
            if len(passes) >= min(BASELINE_MIN, s.baseline_window):
                return statistics.median(passes) + s.baseline_delta_c
        return s.threshold_c

    def baseline_size(self) -> int:
        with self._lock:
            return len(self._passes)

    def _record_pass(self, core_c: float) -> None:
        with self._lock:
            self._passes.append(core_c)


class TrackFusion:
    """Fuses one track's readings: median of the last N good ones, outliers dropped."""

    def __init__(self, screener: ThermalScreener) -> None:
        self._screener = screener
        n = screener.settings.fuse_frames
        self._readings: deque[Reading] = deque(maxlen=n)
        self._min_ok = (n + 1) // 2
        self._contributed = False

    def add(self, reading: Reading) -> None:
        self._readings.append(reading)

    def fused_canthus_c(self) -> float | None:
        """Median of the window's good readings after dropping outliers; None if too few."""
        values = [r.canthus_c for r in self._readings
                  if r.status == "ok" and r.canthus_c is not None]
        if len(values) < self._min_ok:
            return None
        med = statistics.median(values)
        kept = [v for v in values if abs(v - med) <= self._screener.settings.outlier_c]
        if len(kept) < self._min_ok:
            return None
        return statistics.median(kept)

    def decide(self) -> Decision:
        """pass / refer / unreliable for this track now. The first pass of a track feeds the
        screener's baseline (once per track)."""
        canthus = self.fused_canthus_c()
        if canthus is None:
            reasons = Counter(r.reason for r in self._readings
                              if r.status == "unreliable" and r.reason)
            reason = reasons.most_common(1)[0][0] if reasons else "too_few_readings"
            return Decision("unreliable", None, reason)
        core = canthus + self._screener.calibration.canthus_to_core_offset_c
        threshold = self._screener.threshold_c()
        if core >= threshold:
            return Decision("refer", round(canthus, 2), None)
        if not self._contributed:
            self._screener._record_pass(core)
            self._contributed = True
        return Decision("pass", round(canthus, 2), None)
