"""The thermal calibration file (`thermal-calibration/1` JSON): load, validate, save.

It maps visible pixels to thermal pixels (a 3x3 homography, exact on one depth plane) and says
where the blackbody reference sits in the thermal frame and at what temperature it is held.
Optional fields: `canthus_to_core_offset_c` (added to the canthus temperature to estimate core
temperature, default 0.0) and `valid_range_ck` ([low, high] raw centikelvin; pixels at or beyond
either end count as saturated, default [0, 65535]) and `provenance` (a free-form object: who
calibrated, when, residual error; kept but not interpreted). Any other field is refused by name,
so a misspelt optional field cannot be silently ignored.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from foundation.errors import ConsentGateError

SCHEMA = "thermal-calibration/1"
_REDO = "re-run the thermal calibration (python -m provisioning) or fix the file"


class CalibrationError(ConsentGateError):
    """The calibration file is missing, unreadable, of an unknown schema or lacks a field."""


@dataclass(frozen=True)
class Calibration:
    """Visible-to-thermal geometry and the blackbody reference."""

    visible_size: tuple[int, int]  # w, h
    thermal_size: tuple[int, int]  # w, h
    homography: np.ndarray = field(repr=False)  # 3x3 float64, visible px -> thermal px
    blackbody_roi: tuple[int, int, int, int]  # x, y, w, h in thermal pixels
    blackbody_c: float  # set point
    canthus_to_core_offset_c: float = 0.0
    valid_range_ck: tuple[int, int] = (0, 65535)
    provenance: dict[str, Any] | None = None

    def to_thermal(self, points_xy: np.ndarray) -> np.ndarray:
        """Map (N, 2) visible pixel coordinates to thermal pixel coordinates."""
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        homog = np.hstack([pts, np.ones((len(pts), 1))]) @ self.homography.T
        mapped: np.ndarray = homog[:, :2] / homog[:, 2:3]
        return mapped

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "visible_size": list(self.visible_size),
            "thermal_size": list(self.thermal_size),
            "homography": [[float(v) for v in row] for row in self.homography],
            "blackbody": {"roi": list(self.blackbody_roi), "temperature_c": self.blackbody_c},
            "canthus_to_core_offset_c": self.canthus_to_core_offset_c,
            "valid_range_ck": list(self.valid_range_ck),
            **({"provenance": self.provenance} if self.provenance is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: object, *, source: str = "calibration") -> Calibration:
        """Validate a parsed calibration mapping; raise CalibrationError naming the field."""
        if not isinstance(data, dict):
            raise CalibrationError(f"{source}: expected a JSON object; {_REDO}")
        schema = data.get("schema")
        if schema is None:
            raise CalibrationError(f"{source}: missing field 'schema'; {_REDO}")
        if schema != SCHEMA:
            raise CalibrationError(f"{source}: unknown schema {schema!r} (this version reads "
                                   f"{SCHEMA!r}); {_REDO}")
        for name in ("visible_size", "thermal_size", "homography", "blackbody"):
            if name not in data:
                raise CalibrationError(f"{source}: missing field {name!r}; {_REDO}")
        known = {"schema", "visible_size", "thermal_size", "homography", "blackbody",
                 "canthus_to_core_offset_c", "valid_range_ck", "provenance"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CalibrationError(f"{source}: unknown field {unknown[0]!r}; {_REDO}")
        visible = _size(data["visible_size"], "visible_size", source)
        thermal = _size(data["thermal_size"], "thermal_size", source)
        homography = _homography(data["homography"], source)
        bb = data["blackbody"]
        if not isinstance(bb, dict):
            raise CalibrationError(f"{source}: field 'blackbody' must be an object; {_REDO}")
        for name in ("roi", "temperature_c"):
            if name not in bb:
                raise CalibrationError(f"{source}: missing field 'blackbody.{name}'; {_REDO}")
        extra = sorted(set(bb) - {"roi", "temperature_c"})
        if extra:
            raise CalibrationError(f"{source}: unknown field 'blackbody.{extra[0]}'; {_REDO}")
        roi = _ints(bb["roi"], 4, "blackbody.roi", source)
        x, y, w, h = roi
        if w < 2 or h < 2 or x < 0 or y < 0 or x + w > thermal[0] or y + h > thermal[1]:
            raise CalibrationError(f"{source}: field 'blackbody.roi' {list(roi)} must be at "
                                   f"least 2x2 and inside the {thermal[0]}x{thermal[1]} thermal "
                                   f"frame; {_REDO}")
        bb_c = _number(bb["temperature_c"], "blackbody.temperature_c", source)
        if not 20.0 <= bb_c <= 50.0:
            raise CalibrationError(f"{source}: field 'blackbody.temperature_c' {bb_c} is outside "
                                   f"20..50 C; {_REDO}")
        offset = _number(data.get("canthus_to_core_offset_c", 0.0),
                         "canthus_to_core_offset_c", source)
        if not -2.0 <= offset <= 2.0:
            raise CalibrationError(f"{source}: field 'canthus_to_core_offset_c' {offset} is "
                                   f"outside -2..2 C; {_REDO}")
        valid = _ints(data.get("valid_range_ck", [0, 65535]), 2, "valid_range_ck", source)
        if not 0 <= valid[0] < valid[1] <= 65535:
            raise CalibrationError(f"{source}: field 'valid_range_ck' must be [low, high] with "
                                   f"0 <= low < high <= 65535; {_REDO}")
        provenance = data.get("provenance")
        if provenance is not None and not isinstance(provenance, dict):
            raise CalibrationError(f"{source}: field 'provenance' must be an object; {_REDO}")
        return cls(visible_size=visible, thermal_size=thermal, homography=homography,
                   blackbody_roi=(x, y, w, h), blackbody_c=bb_c, canthus_to_core_offset_c=offset,
                   valid_range_ck=(valid[0], valid[1]), provenance=provenance)


def load_calibration(path: Path | str) -> Calibration:
    """Read and validate a calibration file; CalibrationError says what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationError(f"calibration file {path} not found: run the thermal "
                               "calibration or set thermal.calibration_file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"calibration file {path} cannot be read ({exc}); "
                               f"{_REDO}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalibrationError(f"calibration file {path} is not valid JSON ({exc.msg} at line "
                               f"{exc.lineno}); {_REDO}") from None
    return Calibration.from_dict(data, source=f"calibration file {path}")


def save_calibration(calibration: Calibration, path: Path | str) -> None:
    """Write a calibration file (atomically: a temp file renamed into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _number(value: object, name: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CalibrationError(f"{source}: field {name!r} must be a finite number; {_REDO}")
    return float(value)


def _ints(value: object, n: int, name: str, source: str) -> tuple[int, ...]:
    if (not isinstance(value, list) or len(value) != n
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise CalibrationError(f"{source}: field {name!r} must be a list of {n} integers; "
                               f"{_REDO}")
    return tuple(value)


def _size(value: object, name: str, source: str) -> tuple[int, int]:
    w, h = _ints(value, 2, name, source)
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise CalibrationError(f"{source}: field {name!r} [{w}, {h}] must be 16..8192 pixels "
                               f"each way; {_REDO}")
    return w, h


def _homography(value: object, source: str) -> np.ndarray:
    rows: list[list[float]] = []
    if isinstance(value, list) and len(value) == 3:
        for row in value:
            if not isinstance(row, list) or len(row) != 3:
                break
            try:
                rows.append([_number(v, "homography", source) for v in row])
            except CalibrationError:
                break
    if len(rows) != 3:
        raise CalibrationError(f"{source}: field 'homography' must be a 3x3 list of numbers; "
                               f"{_REDO}")
    h = np.array(rows, dtype=np.float64)
    if abs(np.linalg.det(h)) < 1e-12 or h[2, 2] == 0:
        raise CalibrationError(f"{source}: field 'homography' is singular; {_REDO}")
    return h
