"""The demo's faces: scikit-image's astronaut, or one photo per identity from `--faces DIR`.

The same astronaut photo plays every role by default (each role's store state differs); a
folder with an identities.csv gives one photo per person. Photos without exactly one clear face
are skipped; at most five are used (one per traveller), kept in memory only.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from demo.errors import DemoError


def pick_photos(folder: Path | None, engine: Any) -> list[np.ndarray]:
    """Face chips: the astronaut, or one photo per identity from `folder` (in memory only)."""
    import cv2

    from edge.screening.face_chips import default_face_photos, face_chip

    if folder is None:
        return default_face_photos()
    if not folder.is_dir():
        raise DemoError(f"--faces {folder} is not a folder of face photos")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    ids_csv = folder / "identities.csv"
    if ids_csv.is_file():
        seen: set[str] = set()
        chosen = []
        with open(ids_csv, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("identity") not in seen and (folder / row["file"]).is_file():
                    seen.add(row["identity"])
                    chosen.append(folder / row["file"])
        files = chosen
    chips = []
    for path in files:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        faces = engine.detect(image)
        if len(faces) != 1 or not engine.quality(image, faces[0]).ok:
            continue
        chips.append(face_chip(image, np.asarray(faces[0].landmarks, np.float64)[:2]))
        if len(chips) == 5:
            break
    if not chips:
        raise DemoError(f"no photo in {folder} shows one clear face: use other photos")
    return chips
