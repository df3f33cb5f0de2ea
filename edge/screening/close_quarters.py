"""Close quarters: people in view and close-contact pairs, from face landmarks alone.

Pinhole model: a face whose eyes are `d` pixels apart is Z = f * IPD / d metres from the camera
(f: focal length in pixels, IPD: mean adult interpupillary distance, both from settings); its eye
midpoint (u, v) sits at X = (u - cx) * Z / f, Y = (v - cy) * Z / f. Two people closer than
`close_contact_m` (3-D distance between eye midpoints) are a close-contact pair. A turned head
shows a shorter eye gap and so reads farther away (a known limit of the mean-IPD model).

`observe` gives one frame's anonymous `Observation`; `window_summary` returns the maxima since
the previous call (people in view, close pairs) for the telemetry window and starts a new one.
Nothing here knows who anyone is: only counts leave.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from edge.vision.types import Face
from foundation.settings import CloseQuartersSettings

MIN_EYE_GAP_PX = 2.0  # faces with a smaller (or invalid) eye gap are counted but not placed


@dataclass(frozen=True)
class Observation:
    people_in_view: int
    close_pairs: int


@dataclass(frozen=True)
class WindowSummary:
    frames: int
    max_people_in_view: int
    max_close_pairs: int


class CloseQuarters:
    """Distances between people in one camera's view (thread-safe)."""

    def __init__(self, settings: CloseQuartersSettings,
                 image_size: tuple[int, int] = (640, 480)) -> None:
        self.settings = settings
        self.image_size = image_size
        self._lock = threading.Lock()
        self._frames = 0
        self._max_people = 0
        self._max_pairs = 0

    def positions_m(self, faces: list[Face]) -> np.ndarray:
        """(N, 3) camera-frame positions in metres of the faces that can be placed."""
        s = self.settings
        f = s.focal_length_px
        cx, cy = s.principal_point_px or (self.image_size[0] / 2, self.image_size[1] / 2)
        out = []
        for face in faces:
            eyes = np.asarray(face.landmarks, dtype=np.float64)[:2]
            if eyes.shape != (2, 2) or not np.isfinite(eyes).all():
                continue
            gap = float(np.linalg.norm(eyes[1] - eyes[0]))
            if gap < MIN_EYE_GAP_PX:
                continue
            z = f * s.interpupillary_m / gap
            u, v = eyes.mean(axis=0)
            out.append(((u - cx) * z / f, (v - cy) * z / f, z))
        return np.asarray(out, dtype=np.float64).reshape(-1, 3)

    def observe(self, faces: list[Face]) -> Observation:
        pos = self.positions_m(faces)
        pairs = 0
        if len(pos) > 1:
            d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=2)
            pairs = int(np.count_nonzero(np.triu(d < self.settings.close_contact_m, k=1)))
        obs = Observation(people_in_view=len(faces), close_pairs=pairs)
        with self._lock:
            self._frames += 1
            self._max_people = max(self._max_people, obs.people_in_view)
            self._max_pairs = max(self._max_pairs, obs.close_pairs)
        return obs

    def window_summary(self) -> WindowSummary:
        """Maxima since the last call; starts the next window."""
        with self._lock:
            summary = WindowSummary(self._frames, self._max_people, self._max_pairs)
            self._frames = self._max_people = self._max_pairs = 0
        return summary
