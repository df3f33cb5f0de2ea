"""The files of a screening set on disk, shared by `thermal synth|eval` and `pad synth|eval`.

A set is a folder of `calibration.json`, `NNNN_visible.png` + `NNNN_thermal.png` frame pairs,
a `truth.csv` (a header and one row a frame) and `faces.json` (the true face of each frame,
optional to readers).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.capture.thermal import write_thermal_file
from edge.screening.calibration import Calibration, save_calibration

# One frame to write: (visible BGR, thermal centikelvin, truth label, true face as JSON).
SetFrame = tuple[np.ndarray, np.ndarray, object, Mapping[str, object]]


def write_set(out: Path | str, calibration: Calibration, label: str,
              frames: Iterable[SetFrame]) -> Path:
    """Write a set into `out` (created if needed): the calibration, then each frame's pair,
    then `truth.csv` (columns frame,`label`) and `faces.json`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_calibration(calibration, out / "calibration.json")
    rows: list[tuple[int, object]] = []
    faces: list[dict[str, object]] = []
    for i, (visible_bgr, thermal_ck, truth, face) in enumerate(frames):
        cv2.imwrite(str(out / f"{i:04d}_visible.png"), visible_bgr)
        write_thermal_file(out / f"{i:04d}_thermal.png", thermal_ck)
        rows.append((i, truth))
        faces.append({"frame": i, **face})
    with open(out / "truth.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", label])
        writer.writerows(rows)
    (out / "faces.json").write_text(json.dumps({"faces": faces}) + "\n")
    return out


def truth_rows(folder: Path, columns: Sequence[str], error: type[Exception],
               synth: str) -> list[tuple[int, dict[str, str]]]:
    """truth.csv's rows, each with its line number; `error` when the file is missing (naming
    `synth`, the command that writes sets), lacks one of `columns` or has no rows."""
    path = folder / "truth.csv"
    if not path.is_file():
        raise error(f"{path} not found: make a set with `{synth}`")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not set(columns) <= set(reader.fieldnames):
            raise error(f"{path} must have the columns {','.join(columns)}")
        rows = list(enumerate(reader, start=2))
    if not rows:
        raise error(f"{path} has no rows")
    return rows


def read_visible(folder: Path, frame_no: int, error: type[Exception]) -> np.ndarray:
    """Frame `frame_no`'s visible image; `error` when it is missing or unreadable."""
    visible = cv2.imread(str(folder / f"{frame_no:04d}_visible.png"), cv2.IMREAD_COLOR)
    if visible is None:
        raise error(f"{frame_no:04d}_visible.png is missing or unreadable")
    return visible
