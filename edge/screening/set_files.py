"""The files of a screening set on disk, shared by `thermal synth` and `pad synth`.

A set is a folder of `NNNN_visible.png` + `NNNN_thermal.png` frame pairs, a `truth.csv` (a
header and one row a frame) and `faces.json` (the true face of each frame, optional to readers).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.capture.thermal import write_thermal_file


def write_frame_pair(out: Path, index: int, visible_bgr: np.ndarray,
                     thermal_ck: np.ndarray) -> None:
    """Frame `index` of the set: the visible PNG and the radiometric thermal PNG."""
    cv2.imwrite(str(out / f"{index:04d}_visible.png"), visible_bgr)
    write_thermal_file(out / f"{index:04d}_thermal.png", thermal_ck)


def write_truth(out: Path, header: Sequence[str], rows: Iterable[Sequence[object]],
                faces: list[dict[str, object]]) -> None:
    """`truth.csv` (header, one row a frame) and `faces.json` ({"faces": [...]})."""
    with open(out / "truth.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(header))
        writer.writerows(rows)
    (out / "faces.json").write_text(json.dumps({"faces": faces}) + "\n")
