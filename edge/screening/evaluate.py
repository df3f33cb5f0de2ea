"""Synthetic evaluation sets: write one (`write_synth_set`) and score the screener on it.

Layout of a set: `calibration.json`, `NNNN_visible.png`, `NNNN_thermal.png`, `truth.csv`
(`frame,canthus_c`, one face a frame) and, optionally, `faces.json` (the true face box and
landmarks of each frame, which `thermal synth` writes: needed only for scoring the thermal
estimate alone with `--truth-landmarks`). With the face engine, a set with faces.json scores
the detected face nearest the true one; a set without it (a recorded one, say) scores the one
face detected in each frame (the largest, should there be several). Scores: MAE and max
error of the measured faces, the share measured, and referral sensitivity (faces at least
REFER_MARGIN_C above the threshold that were referred) and specificity (faces at least
REFER_MARGIN_C below it that passed), each frame decided alone (fusion over one reading).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.capture.thermal import read_thermal_file
from edge.screening.calibration import load_calibration
from edge.screening.set_files import SetFrame, read_visible, truth_rows, write_set
from edge.screening.synth import Person, SceneRenderer, synthetic_calibration
from edge.screening.thermal import ThermalScreener
from edge.vision.types import Face
from foundation.errors import ConsentGateError
from foundation.settings import ThermalSettings

REFER_MARGIN_C = 0.3
CANTHUS_RANGE_C = (35.5, 39.5)

Detect = Callable[[np.ndarray], list[Face]]


class EvalSetError(ConsentGateError):
    """An evaluation folder is missing files or has a malformed truth.csv."""


def write_synth_set(out: Path | str, count: int, seed: int, photos: list[np.ndarray], *,
                    visible_size: tuple[int, int] = (640, 480),
                    thermal_size: tuple[int, int] = (160, 120)) -> Path:
    """Render `count` frames of one traveller each into `out` (created if needed)."""
    calibration = synthetic_calibration(visible_size, thermal_size, seed)
    renderer = SceneRenderer(calibration, photos, seed)
    rng = np.random.default_rng([seed, 10])
    vw, vh = visible_size

    def frames() -> Iterator[SetFrame]:
        for _ in range(count):
            person = Person(photo=int(rng.integers(len(photos))),
                            x=float(rng.uniform(0.3, 0.65) * vw),
                            y=float(rng.uniform(0.4, 0.55) * vh),
                            face_width_px=float(rng.uniform(0.25, 0.45) * vw),
                            canthus_c=round(float(rng.uniform(*CANTHUS_RANGE_C)), 2),
                            variant=int(rng.integers(1 << 30)))
            visible, thermal, truth = renderer.render([person])
            yield visible, thermal, f"{person.canthus_c:.2f}", truth.people[0].face().to_json()

    return write_set(out, calibration, "canthus_c", frames())


@dataclass
class EvalResult:
    frames: int = 0
    measured: int = 0
    errors: list[float] = field(default_factory=list)
    threshold_c: float = 38.0
    refer_due: int = 0  # truth >= threshold + margin, measured
    referred: int = 0
    pass_due: int = 0  # truth <= threshold - margin, measured
    passed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    measure_ms: list[float] = field(default_factory=list)

    @property
    def measured_share(self) -> float:
        return self.measured / self.frames if self.frames else 0.0

    @property
    def mae(self) -> float:
        return float(np.mean(np.abs(self.errors))) if self.errors else float("nan")

    @property
    def max_error(self) -> float:
        return float(np.max(np.abs(self.errors))) if self.errors else float("nan")

    @property
    def bias(self) -> float:
        return float(np.mean(self.errors)) if self.errors else float("nan")

    @property
    def sensitivity(self) -> float:
        return self.referred / self.refer_due if self.refer_due else float("nan")

    @property
    def specificity(self) -> float:
        return self.passed / self.pass_due if self.pass_due else float("nan")

    def to_json(self) -> dict[str, object]:
        """Plain JSON (a metric with nothing to measure, e.g. no fevers in the set, is null)."""
        return {"frames": self.frames, "measured_share": round(self.measured_share, 4),
                "mae_c": _finite(self.mae), "max_error_c": _finite(self.max_error),
                "bias_c": _finite(self.bias), "threshold_c": self.threshold_c,
                "sensitivity": _finite(self.sensitivity), "refer_due": self.refer_due,
                "specificity": _finite(self.specificity), "pass_due": self.pass_due,
                "unreliable": dict(self.reasons),
                "ms_per_face": round(float(np.median(self.measure_ms)), 3)
                if self.measure_ms else None}


def _finite(value: float) -> float | None:
    return round(value, 4) if np.isfinite(value) else None


def _deg(value: float, spec: str) -> str:
    return f"{value:{spec}} C" if np.isfinite(value) else "n/a"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %" if np.isfinite(value) else "n/a"


def read_truth(folder: Path) -> dict[int, float]:
    truth = {}
    for n, row in truth_rows(folder, ("frame", "canthus_c"), EvalSetError,
                             "python -m edge thermal synth"):
        try:
            truth[int(row["frame"])] = float(row["canthus_c"])
        except (TypeError, ValueError):
            raise EvalSetError(f"{folder / 'truth.csv'} line {n}: frame and canthus_c must be "
                               "numbers") from None
    return truth


def read_truth_faces(folder: Path) -> dict[int, Face]:
    path = folder / "faces.json"
    if not path.is_file():
        raise EvalSetError(f"{path} not found: --truth-landmarks needs the faces.json that "
                           "`thermal synth` writes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        parsed = {int(f["frame"]): (tuple(float(v) for v in f["box"]),
                                    np.asarray(f["landmarks"], dtype=np.float32))
                  for f in data["faces"]}
    except (ValueError, TypeError, KeyError) as exc:  # JSON, Unicode and shape errors
        raise EvalSetError(f"{path} is malformed ({type(exc).__name__}: {exc}): write the set "
                           "again with `python -m edge thermal synth`") from None
    faces: dict[int, Face] = {}
    for frame, (box, landmarks) in parsed.items():
        if landmarks.shape != (5, 2) or len(box) != 4:
            raise EvalSetError(f"{path}: every face needs a box [x, y, w, h] and 5 landmarks")
        faces[frame] = Face(box=box, score=1.0, landmarks=landmarks)
    return faces


def _largest(faces: list[Face]) -> Face | None:
    """The one face of a frame without true landmarks: the largest (the nearest traveller)."""
    return max(faces, key=lambda f: f.box[2] * f.box[3], default=None)


def _closest(faces: list[Face], target: Face) -> Face | None:
    goal = np.asarray(target.landmarks[:2]).mean(axis=0)
    gap = float(np.linalg.norm(target.landmarks[1] - target.landmarks[0]))
    best, best_d = None, 0.5 * gap
    for face in faces:
        d = float(np.linalg.norm(np.asarray(face.landmarks[:2]).mean(axis=0) - goal))
        if d <= best_d:
            best, best_d = face, d
    return best


def evaluate_set(folder: Path | str, settings: ThermalSettings, detect: Detect | None
                 ) -> EvalResult:
    """Score the screener on a set; `detect=None` uses the true landmarks from faces.json,
    which is optional otherwise (then each frame's one detected face is scored)."""
    folder = Path(folder)
    calibration = load_calibration(folder / "calibration.json")
    truth = read_truth(folder)
    with_faces = detect is None or (folder / "faces.json").exists()
    truth_faces = read_truth_faces(folder) if with_faces else None
    single = settings.model_copy(update={"fuse_frames": 1})
    screener = ThermalScreener(calibration, single)
    result = EvalResult(threshold_c=settings.threshold_c)
    for frame_no, true_c in sorted(truth.items()):
        result.frames += 1
        thermal = read_thermal_file(folder / f"{frame_no:04d}_thermal.png")
        truth_face = truth_faces.get(frame_no) if truth_faces is not None else None
        if truth_faces is not None and truth_face is None:
            raise EvalSetError(f"faces.json has no entry for frame {frame_no}")
        if detect is None:
            face: Face | None = truth_face
        else:
            found = detect(read_visible(folder, frame_no, EvalSetError))
            face = _closest(found, truth_face) if truth_face is not None else _largest(found)
        if face is None:
            result.reasons["no_face_detected"] += 1
            continue
        t0 = time.perf_counter()
        reading = screener.measure([face], thermal)[0]
        result.measure_ms.append((time.perf_counter() - t0) * 1000.0)
        if reading.status != "ok" or reading.canthus_c is None:
            result.reasons[reading.reason or "unknown"] += 1
            continue
        result.measured += 1
        result.errors.append(reading.canthus_c - true_c)
        fusion = screener.new_track()
        fusion.add(reading)
        decision = fusion.decide()
        core_truth = true_c + calibration.canthus_to_core_offset_c
        if core_truth >= settings.threshold_c + REFER_MARGIN_C:
            result.refer_due += 1
            result.referred += decision.status == "refer"
        elif core_truth <= settings.threshold_c - REFER_MARGIN_C:
            result.pass_due += 1
            result.passed += decision.status == "pass"
    return result


def format_result(result: EvalResult, title: str = "") -> str:
    lines = [title] if title else []
    lines += [
        f"frames                 {result.frames}",
        f"measured               {result.measured} ({100 * result.measured_share:.1f} %)",
        f"MAE                    {_deg(result.mae, '.3f')}",
        f"max error              {_deg(result.max_error, '.3f')}",
        f"bias (mean error)      {_deg(result.bias, '+.3f')}",
        f"sensitivity (>= thr+{REFER_MARGIN_C})  {result.referred}/{result.refer_due} "
        f"= {_pct(result.sensitivity)}",
        f"specificity (<= thr-{REFER_MARGIN_C})  {result.passed}/{result.pass_due} "
        f"= {_pct(result.specificity)}",
    ]
    if result.reasons:
        lines.append("unreliable / missed     " + ", ".join(
            f"{k}: {v}" for k, v in sorted(result.reasons.items())))
    return "\n".join(lines)

