"""PAD evaluation sets: write one (`write_pad_set`), score `PadDetector` on one
(`evaluate_pad_set`).

Layout of a set (the screening evaluation contract): `calibration.json`, `NNNN_visible.png`,
`NNNN_thermal.png` (16-bit centikelvin), `truth.csv` with columns `frame,label` where label is the
species (`bona_fide*` = bona fide presentation, anything else = an attack instrument species), and
optionally `faces.json` (the true face of each frame; without it, or with `detect` given, faces
are found by the face engine in the visible frame).

Metrics as ISO/IEC 30107-3 reports them, each frame decided alone: APCER per attack species (the
share of that species' presentations classified bona fide, `live`), BPCER (the share of bona fide
presentations classified as attacks, over all bona fide species, also per species), and counts.
`unknown` decisions and frames without a detected face are non-responses: reported per species,
counted neither as accepted attacks nor as rejected bona fide presentations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.capture.thermal import read_thermal_file
from edge.screening.calibration import Calibration, load_calibration
from edge.screening.pad import PadDetector
from edge.screening.pad_synth import SPECIES, PadSceneGenerator, is_bona_fide
from edge.screening.set_files import SetFrame, read_visible, truth_rows, write_set
from edge.vision.types import Face
from foundation.errors import ConsentGateError
from wire import bounded_json

MAX_FACES_JSON_BYTES = 16 * 1024 * 1024  # truth landmarks of a large set, never more

Detect = Callable[[np.ndarray], list[Face]]


class PadEvalError(ConsentGateError):
    """A PAD evaluation folder is missing files or has a malformed truth.csv."""


def write_pad_set(out: Path | str, count: int, seed: int, photos: list[np.ndarray],
                  calibration: Calibration, species: tuple[str, ...] = SPECIES) -> Path:
    """Render `count` scenes (species in turn) into `out` (created if needed)."""
    gen = PadSceneGenerator(calibration, photos, seed)

    def frames() -> Iterator[SetFrame]:
        for i in range(count):
            scene = gen.make(species[i % len(species)])
            yield scene.visible_bgr, scene.thermal_ck, scene.species, scene.face.to_json()

    return write_set(out, calibration, "label", frames())


@dataclass
class SpeciesCounts:
    presentations: int = 0
    live: int = 0
    attack: int = 0
    unknown: int = 0  # PAD abstained
    no_face: int = 0  # the face engine found no face

    def to_json(self) -> dict:
        return {"presentations": self.presentations, "live": self.live, "attack": self.attack,
                "unknown": self.unknown, "no_face": self.no_face}


@dataclass
class PadEvalResult:
    species: dict[str, SpeciesCounts] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    measure_ms: list[float] = field(default_factory=list)

    def add(self, species: str, decision: str | None, reason: str | None = None) -> None:
        c = self.species.setdefault(species, SpeciesCounts())
        c.presentations += 1
        if decision is None:
            c.no_face += 1
        else:
            setattr(c, decision, getattr(c, decision) + 1)
        if reason:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    @property
    def frames(self) -> int:
        return sum(c.presentations for c in self.species.values())

    def apcer(self) -> dict[str, float | None]:
        """Per attack species: live / (live + attack)."""
        out: dict[str, float | None] = {}
        for name, c in sorted(self.species.items()):
            if not is_bona_fide(name):
                n = c.live + c.attack
                out[name] = round(c.live / n, 4) if n else None
        return out

    def bpcer_by_species(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, c in sorted(self.species.items()):
            if is_bona_fide(name):
                n = c.live + c.attack
                out[name] = round(c.attack / n, 4) if n else None
        return out

    def bpcer(self) -> float | None:
        bona = [c for n, c in self.species.items() if is_bona_fide(n)]
        n = sum(c.live + c.attack for c in bona)
        return round(sum(c.attack for c in bona) / n, 4) if n else None

    def to_json(self) -> dict:
        return {"apcer": self.apcer(), "bpcer": self.bpcer(), "frames": self.frames,
                "bpcer_by_species": self.bpcer_by_species(),
                "counts": {k: v.to_json() for k, v in sorted(self.species.items())},
                "reasons": dict(sorted(self.reasons.items())),
                "ms_per_face": round(float(np.median(self.measure_ms)), 3)
                if self.measure_ms else None}


def read_pad_truth(folder: Path) -> dict[int, str]:
    path = folder / "truth.csv"
    truth: dict[int, str] = {}
    for n, row in truth_rows(folder, ("frame", "label"), PadEvalError,
                             "python -m edge pad synth"):
        try:
            frame = int(row["frame"])
        except (TypeError, ValueError):
            raise PadEvalError(f"{path} line {n}: frame must be a number") from None
        label = (row["label"] or "").strip()
        if not label:
            raise PadEvalError(f"{path} line {n}: empty label")
        truth[frame] = label
    return truth


def _truth_faces(folder: Path) -> dict[int, Face] | None:
    path = folder / "faces.json"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FACES_JSON_BYTES + 1)
        data = bounded_json.loads(raw, max_bytes=MAX_FACES_JSON_BYTES, max_depth=5)
        return {int(f["frame"]): Face(box=_box(f["box"]), score=1.0,
                                      landmarks=np.asarray(f["landmarks"], dtype=np.float32))
                for f in data["faces"]}
    except (ValueError, TypeError, KeyError, bounded_json.JSONLimitError) as exc:
        raise PadEvalError(f"{path} is malformed ({type(exc).__name__}: {exc})") from None


def _closest(faces: list[Face], target: Face | None) -> Face | None:
    if not faces:
        return None
    if target is None:
        return max(faces, key=lambda f: f.box[2] * f.box[3])  # the presented (largest) face
    tx, ty, tw, th = target.box
    goal = np.array([tx + tw / 2, ty + th / 2])
    best = min(faces, key=lambda f: float(np.hypot(f.box[0] + f.box[2] / 2 - goal[0],
                                                   f.box[1] + f.box[3] / 2 - goal[1])))
    d = np.hypot(best.box[0] + best.box[2] / 2 - goal[0], best.box[1] + best.box[3] / 2 - goal[1])
    return best if d <= 0.5 * tw else None


def evaluate_pad_set(folder: Path | str, detect: Detect | None = None) -> PadEvalResult:
    """Score PAD on a set. `detect=None` uses faces.json (PadEvalError if it is absent)."""
    folder = Path(folder)
    calibration = load_calibration(folder / "calibration.json")
    truth = read_pad_truth(folder)
    truth_faces = _truth_faces(folder)
    if detect is None and truth_faces is None:
        raise PadEvalError(f"{folder} has no faces.json: evaluate it with the face engine")
    detector = PadDetector(calibration)
    result = PadEvalResult()
    for frame_no, species in sorted(truth.items()):
        thermal = read_thermal_file(folder / f"{frame_no:04d}_thermal.png")
        target = truth_faces.get(frame_no) if truth_faces else None
        if detect is None:
            if target is None:
                raise PadEvalError(f"faces.json has no entry for frame {frame_no}")
            face: Face | None = target
        else:
            face = _closest(detect(read_visible(folder, frame_no, PadEvalError)), target)
        if face is None:
            result.add(species, None, "no_face_detected")
            continue
        t0 = time.perf_counter()
        r = detector.measure([face], thermal)[0]
        result.measure_ms.append((time.perf_counter() - t0) * 1000.0)
        result.add(species, r.decision, None if r.decision == "live" else r.reason)
    return result


def format_pad_result(result: PadEvalResult, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'species':20s} {'n':>5s} {'live':>5s} {'attack':>6s} {'unknown':>7s} "
                 f"{'no face':>7s}  rate")
    apcer, bpcer = result.apcer(), result.bpcer_by_species()
    for name, c in sorted(result.species.items(), key=lambda kv: (not is_bona_fide(kv[0]),
                                                                  kv[0])):
        rate = bpcer.get(name) if is_bona_fide(name) else apcer.get(name)
        kind = "BPCER" if is_bona_fide(name) else "APCER"
        shown = f"{kind} {100 * rate:.2f} %" if rate is not None else f"{kind} n/a"
        lines.append(f"{name:20s} {c.presentations:5d} {c.live:5d} {c.attack:6d} "
                     f"{c.unknown:7d} {c.no_face:7d}  {shown}")
    b = result.bpcer()
    lines.append(f"BPCER (all bona fide) {'n/a' if b is None else f'{100 * b:.2f} %'}")
    if result.measure_ms:
        lines.append(f"PAD ms per face (median) {np.median(result.measure_ms):.3f}")
    return "\n".join(lines)


def _box(values: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in values)
    return x, y, w, h
