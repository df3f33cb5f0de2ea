"""`python -m edge thermal synth|eval|measure` end to end, and the issue's accuracy targets."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import structlog

from edge.__main__ import main
from edge.capture.thermal import write_thermal_file
from edge.screening.evaluate import EvalSetError, evaluate_set, write_synth_set
from edge.screening.synth import default_face_photos
from foundation.settings import ThermalSettings

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
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, "stdout must hold the JSON only (logs go to stderr)"
    out = json.loads(lines[0])
    assert len(out["faces"]) == 1
    face = out["faces"][0]
    assert set(face) == {"box", "canthus_c", "status", "reason"}
    # status is the one-frame decision (pass/refer/unreliable), as `thermal eval` decides it
    expected = "refer" if face["canthus_c"] >= ThermalSettings().threshold_c else "pass"
    assert face["status"] == expected and face["reason"] is None
    assert abs(face["canthus_c"] - truth) <= 0.3
    assert not structlog.is_configured(), "the CLI must restore the caller's logging"


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


@pytest.fixture
def one_frame_set(tmp_path: Path) -> Path:
    return write_synth_set(tmp_path / "set", 1, 5, default_face_photos())


def _measure(folder: Path, **override: Path) -> list[str]:
    files = {"visible": folder / "0000_visible.png", "thermal": folder / "0000_thermal.png",
             "calibration": folder / "calibration.json", **override}
    return ["thermal", "measure", *(x for k, v in files.items() for x in (f"--{k}", str(v)))]


def _one_error_line(capsys: pytest.CaptureFixture, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


def test_measure_cli_bad_inputs_are_one_line(one_frame_set: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    eight_bit = tmp_path / "eight.png"
    cv2.imwrite(str(eight_bit), np.full((120, 160), 90, np.uint8))
    small = tmp_path / "small.png"
    write_thermal_file(small, np.full((60, 80), 31000, np.uint16))
    text = tmp_path / "notes.json"
    text.write_text("not json\n")
    cal = json.loads((one_frame_set / "calibration.json").read_text())
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({**cal, "schema": "thermal-calibration/2"}))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({k: v for k, v in cal.items() if k != "homography"}))
    cases = [
        ({"thermal": tmp_path / "nope.png"}, ("not found",)),
        ({"thermal": empty}, ("empty",)),
        ({"thermal": tmp_path}, ("is a folder",)),
        ({"thermal": eight_bit}, ("uint8", "uint16")),
        ({"thermal": small}, ("80x60", "160x120")),
        ({"calibration": text}, ("not valid JSON",)),
        ({"calibration": schema}, ("unknown schema", "thermal-calibration/2")),
        ({"calibration": missing}, ("missing field 'homography'",)),
        ({"calibration": tmp_path / "nope.json"}, ("not found",)),
        ({"visible": tmp_path / "nope.png"}, ("no such file",)),
        ({"visible": empty}, ("empty file",)),
        ({"visible": text}, ("not an image",)),
        ({"visible": tmp_path}, ("is a folder",)),
    ]
    for override, words in cases:
        capsys.readouterr()
        assert main(_measure(one_frame_set, **override)) == 1, override
        _one_error_line(capsys, *words)


def test_measure_cli_wrong_visible_size_or_no_face(one_frame_set: Path, tmp_path: Path,
                                                   installed_model_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("CONSENTGATE_MODEL_DIR", str(installed_model_dir))
    big = tmp_path / "big.png"
    visible = cv2.imread(str(one_frame_set / "0000_visible.png"))
    assert visible is not None
    cv2.imwrite(str(big), cv2.resize(visible, (1280, 960)))
    capsys.readouterr()
    assert main(_measure(one_frame_set, visible=big)) == 1
    _one_error_line(capsys, "1280x960", "640x480")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 128, np.uint8))
    assert main([*_measure(one_frame_set, visible=blank), "--json"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"faces": []}
    assert captured.err.strip().splitlines() == [
        f"error: {blank}: no face found in the visible image; nothing measured"]
    assert main(_measure(one_frame_set, visible=blank)) == 1
    _one_error_line(capsys, "no face found")


def test_synth_and_eval_bad_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["thermal", "synth", "--out", str(a_file), "--count", "1"]) == 1
    _one_error_line(capsys, "is a file")
    assert main(["thermal", "eval", str(tmp_path / "nope")]) == 1
    _one_error_line(capsys, "not a folder", "thermal synth")
    folder = write_synth_set(tmp_path / "s", 1, 5, default_face_photos())
    (folder / "faces.json").write_text('{"faces": [{"frame": 0}]}')
    assert main(["thermal", "eval", str(folder), "--truth-landmarks"]) == 1
    _one_error_line(capsys, "faces.json", "malformed")


def test_eval_json_is_strict_json_without_fevers(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    """A set with no one above the threshold has no sensitivity: null, never NaN."""
    folder = write_synth_set(tmp_path / "s", 2, 5, default_face_photos())
    (folder / "truth.csv").write_text("frame,canthus_c\n0,36.5\n1,36.6\n")
    capsys.readouterr()
    assert main(["thermal", "eval", str(folder), "--truth-landmarks", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1], parse_constant=lambda c: pytest.fail(c))
    assert result["refer_due"] == 0 and result["sensitivity"] is None
    assert "n/a" in out


def test_eval_without_faces_json_scores_the_one_face_a_frame(
        tmp_path: Path, installed_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    """A set laid out as the contract says (calibration, frames, truth.csv) needs no faces.json:
    the face engine finds the one face of each frame; only --truth-landmarks needs the file."""
    monkeypatch.setenv("CONSENTGATE_MODEL_DIR", str(installed_model_dir))
    folder = write_synth_set(tmp_path / "s", 8, 11, default_face_photos())
    capsys.readouterr()
    assert main(["thermal", "eval", str(folder), "--json"]) == 0
    with_truth = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (folder / "faces.json").unlink()
    assert main(["thermal", "eval", str(folder), "--json"]) == 0
    out = capsys.readouterr().out
    assert "one face a frame: no faces.json" in out.splitlines()[0]
    alone = json.loads(out.strip().splitlines()[-1])
    assert alone["frames"] == 8 and alone["measured_share"] == 1.0
    assert alone["mae_c"] == with_truth["mae_c"]  # the one face is the true one
    assert main(["thermal", "eval", str(folder), "--truth-landmarks"]) == 1
    _one_error_line(capsys, "faces.json", "--truth-landmarks")
