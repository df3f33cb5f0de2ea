"""`python -m edge thermal synth|eval|measure` end to end, and the issue's accuracy targets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from edge.cli import main
from edge.screening.evaluate import EvalSetError, evaluate_set, write_synth_set
from edge.screening.synth import default_face_photos
from edge.settings import ThermalSettings

TARGETS = {"mae_c": 0.2, "max_error_c": 0.5}


def _check_targets(result: dict) -> None:
    assert result["measured_share"] == 1.0
    assert result["mae_c"] <= TARGETS["mae_c"]
    assert result["max_error_c"] <= TARGETS["max_error_c"]
    assert result["refer_due"] > 0 and result["sensitivity"] == 1.0
    assert result["pass_due"] > 0 and result["specificity"] >= 0.99


def test_synth_then_eval_via_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "set"
    assert main(["thermal", "synth", "--out", str(out), "--count", "6", "--seed", "3"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names[:2] == ["0000_thermal.png", "0000_visible.png"]
    assert {"calibration.json", "truth.csv", "faces.json", "0005_thermal.png"} <= set(names)
    with open(out / "truth.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["frame", "canthus_c"] and len(rows) == 7
    capsys.readouterr()
    assert main(["thermal", "eval", str(out), "--truth-landmarks", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("MAE") for line in lines)
    result = json.loads(lines[-1])
    assert result["frames"] == 6 and result["measured_share"] == 1.0
    assert result["mae_c"] <= 0.2


@pytest.mark.parametrize("size", [(160, 120), (320, 240)])
def test_targets_on_a_fresh_set(tmp_path: Path, size: tuple[int, int]) -> None:
    folder = write_synth_set(tmp_path, 30, 1000 + size[0], default_face_photos(),
                             thermal_size=size)
    _check_targets(evaluate_set(folder, ThermalSettings(), None).to_json())


@pytest.mark.slow
@pytest.mark.parametrize("size", [(160, 120), (320, 240)])
def test_targets_with_the_face_engine(tmp_path: Path, size: tuple[int, int],
                                      installed_model_dir: Path, faces_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CONSENTGATE_MODEL_DIR", str(installed_model_dir))
    out = tmp_path / "set"
    size_arg = f"{size[0]}x{size[1]}"
    assert main(["thermal", "synth", "--out", str(out), "--count", "150", "--seed", "77",
                 "--thermal-size", size_arg, "--faces", str(faces_dir)]) == 0
    capsys.readouterr()
    assert main(["thermal", "eval", str(out), "--json"]) == 0
    _check_targets(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def test_measure_cli_runs_the_face_engine(tmp_path: Path, installed_model_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CONSENTGATE_MODEL_DIR", str(installed_model_dir))
    folder = write_synth_set(tmp_path, 1, 5, default_face_photos())
    with open(folder / "truth.csv", newline="") as fh:
        truth = float(next(csv.DictReader(fh))["canthus_c"])
    capsys.readouterr()
    assert main(["thermal", "measure", "--visible", str(folder / "0000_visible.png"),
                 "--thermal", str(folder / "0000_thermal.png"),
                 "--calibration", str(folder / "calibration.json"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["faces"]) == 1
    face = out["faces"][0]
    assert set(face) == {"box", "canthus_c", "status", "reason"}
    assert face["status"] == "ok" and face["reason"] is None
    assert abs(face["canthus_c"] - truth) <= 0.3


def test_measure_cli_bad_thermal_file_is_one_line(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    folder = write_synth_set(tmp_path, 1, 5, default_face_photos())
    (tmp_path / "bad.png").write_text("not a picture")
    capsys.readouterr()
    code = main(["thermal", "measure", "--visible", str(folder / "0000_visible.png"),
                 "--thermal", str(tmp_path / "bad.png"),
                 "--calibration", str(folder / "calibration.json")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: thermal file") and "Traceback" not in err


def test_eval_refuses_broken_sets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = write_synth_set(tmp_path / "s", 2, 5, default_face_photos())
    (folder / "truth.csv").write_text("frame,temp\n0,37\n")
    with pytest.raises(EvalSetError, match="frame,canthus_c"):
        evaluate_set(folder, ThermalSettings(), None)
    (folder / "truth.csv").write_text("frame,canthus_c\n0,warm\n")
    with pytest.raises(EvalSetError, match="line 2"):
        evaluate_set(folder, ThermalSettings(), None)
    (folder / "truth.csv").unlink()
    assert main(["thermal", "eval", str(folder), "--truth-landmarks"]) == 1
    assert "thermal synth" in capsys.readouterr().err


def test_synth_size_argument_is_checked(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["thermal", "synth", "--out", str(tmp_path), "--thermal-size", "big"])
