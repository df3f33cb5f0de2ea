"""ThermalSource: 16-bit PNG/TIFF files, folders, Y16 device frames, and every bad file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.capture.source import CaptureError, CorruptFrameError
from edge.capture.thermal import (
    ThermalFrameError,
    ThermalSource,
    ThermalSourceError,
    c_to_ck,
    ck_to_c,
    read_thermal_file,
    write_thermal_file,
    y16_to_frame,
)


def _frame(value: int = 31015, shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    frame = np.full(shape, value, dtype=np.uint16)
    frame[3, 5] = value + 123
    return frame


def test_units() -> None:
    assert float(c_to_ck(37.0)) == 31015.0
    assert float(ck_to_c(31015)) == pytest.approx(37.0)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_file_round_trip(tmp_path: Path, suffix: str) -> None:
    frame = _frame()
    write_thermal_file(tmp_path / f"t{suffix}", frame)
    got = read_thermal_file(tmp_path / f"t{suffix}")
    assert got.dtype == np.uint16 and np.array_equal(got, frame)


def test_file_source_repeats_the_still(tmp_path: Path) -> None:
    write_thermal_file(tmp_path / "t.png", _frame())
    with ThermalSource(tmp_path / "t.png") as src:
        assert src.kind == "file"
        a, b = src.read(), src.read()
    assert np.array_equal(a, b)


def test_folder_in_name_order_then_loops(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        write_thermal_file(tmp_path / f"{i:04d}.png", _frame(30000 + i))
    (tmp_path / "notes.txt").write_text("ignored")
    src = ThermalSource(tmp_path)
    values = [int(src.read()[0, 0]) for _ in range(4)]
    assert values == [30000, 30001, 30002, 30000]
    src.close()


def test_folder_without_loop_ends(tmp_path: Path) -> None:
    write_thermal_file(tmp_path / "0.png", _frame())
    src = ThermalSource(tmp_path, loop=False)
    src.read()
    with pytest.raises(ThermalSourceError, match="no more frames"):
        src.read()


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ThermalSourceError, match="holds no"):
        ThermalSource(tmp_path).open()


def test_missing_source() -> None:
    with pytest.raises(ThermalSourceError, match=r"thermal\.source"):
        ThermalSource("/no/such/thermal.png").open()


def test_missing_device_is_a_capture_error() -> None:
    with pytest.raises(CaptureError, match="cannot be opened"):
        ThermalSource("/dev/video-consentgate-missing").open()


def test_errors_fit_the_capture_boundary() -> None:
    assert issubclass(ThermalFrameError, CorruptFrameError)
    assert issubclass(ThermalSourceError, CaptureError)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    p = tmp_path / "eight_bit.png"
    cv2.imwrite(str(p), np.zeros((120, 160), np.uint8))
    paths["eight_bit"] = p
    p = tmp_path / "colour16.png"
    cv2.imwrite(str(p), np.zeros((120, 160, 3), np.uint16))
    paths["colour16"] = p
    p = tmp_path / "float.tiff"
    cv2.imwrite(str(p), np.zeros((120, 160), np.float32))
    paths["float"] = p
    p = tmp_path / "tiny.png"
    cv2.imwrite(str(p), np.zeros((8, 8), np.uint16))
    paths["tiny"] = p
    p = tmp_path / "truncated.png"
    write_thermal_file(p, _frame())
    p.write_bytes(p.read_bytes()[:40])
    paths["truncated"] = p
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    paths["empty"] = p
    p = tmp_path / "text.png"
    p.write_text("not an image")
    paths["text"] = p
    paths["missing"] = tmp_path / "missing.png"
    return paths


@pytest.mark.parametrize(("kind", "match"), [
    ("eight_bit", "uint8"), ("colour16", "one channel"), ("float", "float32"),
    ("tiny", "too small"), ("truncated", "not a readable"), ("empty", "not a readable"),
    ("text", "not a readable"), ("missing", "not found"),
])
def test_bad_file_raises_thermal_frame_error(tmp_path: Path, kind: str, match: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ThermalFrameError, match=match):
        read_thermal_file(path)


def test_bad_file_in_a_folder_is_one_bad_frame(tmp_path: Path) -> None:
    write_thermal_file(tmp_path / "0.png", _frame())
    (tmp_path / "1.png").write_text("garbage")
    write_thermal_file(tmp_path / "2.png", _frame(30500))
    src = ThermalSource(tmp_path)
    src.read()
    with pytest.raises(ThermalFrameError):
        src.read()
    assert int(src.read()[0, 0]) == 30500  # the source goes on after a bad frame


def test_y16_device_frames() -> None:
    frame = _frame(shape=(20, 32))
    assert np.array_equal(y16_to_frame(frame, (32, 20)), frame)
    raw = frame.astype("<u2").view(np.uint8).reshape(1, -1)  # what some V4L2 drivers return
    assert np.array_equal(y16_to_frame(raw, (32, 20)), frame)
    with pytest.raises(ThermalFrameError, match="Y16"):
        y16_to_frame(np.zeros((20, 32, 3), np.uint8), (32, 20))
