"""thermal-calibration/1: round trip, and a clear error naming each missing or bad field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.screening.calibration import (
    Calibration,
    CalibrationError,
    load_calibration,
    save_calibration,
)
from edge.screening.synth import synthetic_calibration
from foundation.errors import ConsentGateError


def _good() -> dict:
    return synthetic_calibration((640, 480), (160, 120), seed=3).to_dict()


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(data))
    return path


def test_round_trip(tmp_path: Path) -> None:
    cal = synthetic_calibration((640, 480), (320, 240), seed=5)
    save_calibration(cal, tmp_path / "c.json")
    again = load_calibration(tmp_path / "c.json")
    assert again.visible_size == (640, 480) and again.thermal_size == (320, 240)
    assert np.allclose(again.homography, cal.homography)
    assert again.blackbody_roi == cal.blackbody_roi and again.blackbody_c == cal.blackbody_c
    assert isinstance(CalibrationError("x"), ConsentGateError)


def test_to_thermal_applies_homography() -> None:
    h = np.array([[0.25, 0, 2], [0, 0.25, -1], [0, 0, 1]], dtype=np.float64)
    cal = Calibration((640, 480), (160, 120), h, (140, 4, 10, 8), 35.0)
    assert np.allclose(cal.to_thermal(np.array([[100.0, 40.0]])), [[27.0, 9.0]])


def test_minimal_file_gets_optional_defaults(tmp_path: Path) -> None:
    data = _good()
    for optional in ("canthus_to_core_offset_c", "valid_range_ck"):
        del data[optional]
    cal = load_calibration(_write(tmp_path, data))
    assert cal.canthus_to_core_offset_c == 0.0 and cal.valid_range_ck == (0, 65535)


def test_provenance_is_kept(tmp_path: Path) -> None:
    data = _good() | {"provenance": {"by": "field engineer 7", "rms_px": 0.4}}
    cal = load_calibration(_write(tmp_path, data))
    assert cal.provenance == {"by": "field engineer 7", "rms_px": 0.4}
    assert cal.to_dict()["provenance"]["rms_px"] == 0.4


@pytest.mark.parametrize("field", ["schema", "visible_size", "thermal_size", "homography",
                                   "blackbody"])
def test_missing_field_is_named(tmp_path: Path, field: str) -> None:
    data = _good()
    del data[field]
    with pytest.raises(CalibrationError, match=f"missing field '{field}'"):
        load_calibration(_write(tmp_path, data))


@pytest.mark.parametrize("field", ["roi", "temperature_c"])
def test_missing_blackbody_field_is_named(tmp_path: Path, field: str) -> None:
    data = _good()
    del data["blackbody"][field]
    with pytest.raises(CalibrationError, match=f"blackbody.{field}"):
        load_calibration(_write(tmp_path, data))


def test_unknown_schema_is_named(tmp_path: Path) -> None:
    data = _good() | {"schema": "thermal-calibration/2"}
    with pytest.raises(CalibrationError, match="unknown schema 'thermal-calibration/2'"):
        load_calibration(_write(tmp_path, data))


def test_unknown_field_is_named(tmp_path: Path) -> None:
    data = _good() | {"canthus_to_core_ofset_c": 0.3}
    with pytest.raises(CalibrationError, match="unknown field 'canthus_to_core_ofset_c'"):
        load_calibration(_write(tmp_path, data))


@pytest.mark.parametrize(("change", "match"), [
    ({"homography": [[1, 0], [0, 1]]}, "homography"),
    ({"homography": [[0, 0, 0], [0, 0, 0], [0, 0, 1]]}, "singular"),
    ({"homography": [[1, 0, "x"], [0, 1, 0], [0, 0, 1]]}, "homography"),
    ({"visible_size": [640]}, "visible_size"),
    ({"thermal_size": [4, 4]}, "thermal_size"),
    ({"thermal_size": [160.5, 120]}, "thermal_size"),
    ({"blackbody": {"roi": [155, 4, 10, 8], "temperature_c": 35.0}}, "blackbody.roi"),
    ({"blackbody": {"roi": [1, 1, 4, 4], "temperature_c": "hot"}}, "blackbody.temperature_c"),
    ({"blackbody": {"roi": [1, 1, 4, 4], "temperature_c": 80.0}}, "blackbody.temperature_c"),
    ({"blackbody": [1, 2]}, "blackbody"),
    ({"valid_range_ck": [500, 100]}, "valid_range_ck"),
    ({"canthus_to_core_offset_c": float("nan")}, "canthus_to_core_offset_c"),
    ({"provenance": "yesterday"}, "provenance"),
])
def test_bad_values_are_named(tmp_path: Path, change: dict, match: str) -> None:
    with pytest.raises(CalibrationError, match=match):
        load_calibration(_write(tmp_path, _good() | change))


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=r"not found.*calibration"):
        load_calibration(tmp_path / "nope.json")


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]", ""])
def test_not_a_json_object(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=r"JSON"):
        load_calibration(path)
