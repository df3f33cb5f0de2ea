"""`python -m edge faces ...`: JSON shapes, tables, and one clear line per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog

from edge.__main__ import main


@pytest.fixture(autouse=True)
def _models(installed_model_dir: Path, monkeypatch):
    monkeypatch.setenv("CONSENTGATE_MODEL_DIR", str(installed_model_dir))
    yield
    structlog.reset_defaults()  # the CLI configures process-wide logging; undo it


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo\n")
    blank = tmp_path / "blank.png"
    import cv2
    import numpy as np
    cv2.imwrite(str(blank), np.full((240, 320, 3), 200, np.uint8))
    return {"missing": tmp_path / "missing.jpg", "empty": empty, "text": text, "blank": blank}


def test_detect_json(faces_dir: Path, capsys):
    assert main(["faces", "detect", str(faces_dir / "couple.jpg"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["file"].endswith("couple.jpg") and len(out["faces"]) == 2
    face = out["faces"][0]
    assert len(face["box"]) == 4 and 0 < face["score"] <= 1 and len(face["landmarks"]) == 5


def test_detect_table(faces_dir: Path, capsys):
    assert main(["faces", "detect", str(faces_dir / "img1.jpg")]) == 0
    assert "img1.jpg" in capsys.readouterr().out


@pytest.mark.parametrize("kind,words", [("missing", "no such file"), ("empty", "empty file"),
                                        ("text", "not an image"), ("blank", "no face found")])
def test_detect_bad_input_one_line(bad_files, faces_dir: Path, kind: str, words: str, capsys):
    code = main(["faces", "detect", str(faces_dir / "img1.jpg"), str(bad_files[kind]),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 1
    lines = [json.loads(ln) for ln in captured.out.splitlines()]
    assert len(lines) == 2 and len(lines[0]["faces"]) == 1  # the good file still answered
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and words in errors[0] and str(bad_files[kind]) in errors[0]
    assert "Traceback" not in captured.err


def test_compare_same_and_different(faces_dir: Path, capsys):
    assert main(["faces", "compare", str(faces_dir / "img1.jpg"), str(faces_dir / "img2.jpg"),
                 "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert set(same) == {"similarity", "threshold", "match"} and same["match"] is True
    assert main(["faces", "compare", str(faces_dir / "img1.jpg"), str(faces_dir / "img3.jpg"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["match"] is False


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "blank"])
def test_compare_bad_input(bad_files, faces_dir: Path, kind: str, capsys):
    code = main(["faces", "compare", str(faces_dir / "img1.jpg"), str(bad_files[kind])])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err


def test_eval_small_folder(tmp_path: Path, faces_dir: Path, face_identities, capsys):
    people: dict[str, list[str]] = {}
    for file, person in face_identities.items():
        people.setdefault(person, []).append(file)
    chosen = [(f, p) for p in sorted(people)[:3] for f in people[p][:2]]
    csv_path = tmp_path / "ids.csv"
    csv_path.write_text("file,identity\n" + "".join(f"{f},{p}\n" for f, p in chosen))
    assert main(["faces", "eval", str(faces_dir), "--identities", str(csv_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["detection_rate"] == 1.0 and result["genuine_pairs"] == 3
    assert result["impostor_pairs"] == 12 and result["auc"] == 1.0
    for key in ("tar_at_far_1e-2", "tar_at_far_1e-3", "threshold"):
        assert key in result


def test_eval_bad_inputs(tmp_path: Path, faces_dir: Path, capsys):
    code = main(["faces", "eval", str(faces_dir), "--identities", str(tmp_path / "none.csv")])
    assert code == 1 and "identities CSV not found" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("name,who\nx,y\n")
    assert main(["faces", "eval", str(faces_dir), "--identities", str(bad)]) == 1
    assert "file,identity" in capsys.readouterr().err
    code = main(["faces", "lfw", str(tmp_path)])
    assert code == 1 and "pairs.txt" in capsys.readouterr().err


def test_missing_models_one_line(tmp_path: Path, faces_dir: Path, monkeypatch, capsys):
    monkeypatch.setenv("CONSENTGATE_MODEL_DIR", str(tmp_path))
    assert main(["faces", "detect", str(faces_dir / "img1.jpg")]) == 1
    err = capsys.readouterr().err
    assert "python -m provisioning install-models" in err and "Traceback" not in err


def test_missing_models_in_the_default_folder_name_both_places(tmp_path: Path, faces_dir: Path,
                                                              monkeypatch, capsys):
    """No $CONSENTGATE_MODEL_DIR: a checkout whose .models lacks the models says where the
    default looked (the checkout's .models, then the system folder)."""
    import foundation.settings as settings_mod

    monkeypatch.delenv("CONSENTGATE_MODEL_DIR")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / ".models").mkdir()
    monkeypatch.setattr(settings_mod, "_CHECKOUT", tmp_path)
    assert main(["faces", "detect", str(faces_dir / "img1.jpg")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"not installed in {tmp_path / '.models'}" in err
    assert "/var/lib/consentgate/models" in err and "CONSENTGATE_MODEL_DIR" in err


def test_more_bad_inputs_one_line(tmp_path: Path, faces_dir: Path, capsys):
    """A folder given as an image or CSV, an incomplete CSV row, a broken pairs.txt."""
    assert main(["faces", "detect", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: {tmp_path}: is a folder, not an image"]
    cases = []
    folder_csv = tmp_path / "ids"
    folder_csv.mkdir()
    cases.append((["eval", str(faces_dir), "--identities", str(folder_csv)], "is a folder"))
    partial = tmp_path / "partial.csv"
    partial.write_text("file,identity\nimg1.jpg,a\nimg2.jpg\n")
    cases.append((["eval", str(faces_dir), "--identities", str(partial)], "line 3"))
    lfw = tmp_path / "lfw"
    lfw.mkdir()
    (lfw / "pairs.txt").write_bytes(b"\xff\xfe\x00")
    cases.append((["lfw", str(lfw)], "not a text file"))
    for args, words in cases:
        assert main(["faces", *args]) == 1
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, lines)
    (lfw / "pairs.txt").write_text("")
    assert main(["faces", "lfw", str(lfw)]) == 1
    assert "FOLDS PAIRS_PER_FOLD" in capsys.readouterr().err


def test_cli_logging_is_confined_to_the_run(faces_dir: Path, capsys):
    """The CLI logs warnings to stderr during its run only; the caller's structlog set-up
    (here: none, structlog's defaults) is back afterwards, and stdout holds only the JSON."""
    assert not structlog.is_configured()
    assert main(["faces", "detect", str(faces_dir / "img1.jpg"), "--json"]) == 0
    assert not structlog.is_configured()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0])["faces"]
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    before = structlog.get_config()
    assert main(["faces", "--verbose", "detect", str(faces_dir / "img1.jpg"), "--json"]) == 0
    captured = capsys.readouterr()
    assert structlog.get_config() == before
    assert "vision_engine_ready" in captured.err and "vision" not in captured.out
