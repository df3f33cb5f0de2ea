"""CloseQuarters: distances from the eye gap (pinhole), close pairs, window maxima."""

from __future__ import annotations

import numpy as np
import pytest

from edge.screening.close_quarters import CloseQuarters, Observation, WindowSummary
from edge.vision.types import Face
from foundation.settings import CloseQuartersSettings

F = 900.0
IPD = 0.063
SIZE = (1280, 720)


def person_at(x_m: float, y_m: float, z_m: float) -> Face:
    """The face a pinhole camera sees of a person whose eye midpoint is at (x, y, z) metres."""
    cx, cy = SIZE[0] / 2, SIZE[1] / 2
    eyes = [(x_m + dx, y_m, z_m) for dx in (-IPD / 2, IPD / 2)]
    lm = [(cx + F * X / Z, cy + F * Y / Z) for X, Y, Z in eyes]
    u, v = np.mean(lm, axis=0)
    gap = lm[1][0] - lm[0][0]
    lm += [(u, v + 0.6 * gap), (u - 0.4 * gap, v + gap), (u + 0.4 * gap, v + gap)]
    return Face(box=(u - gap, v - gap, 2 * gap, 3 * gap), score=0.9,
                landmarks=np.asarray(lm, dtype=np.float32))


@pytest.fixture
def cq() -> CloseQuarters:
    return CloseQuarters(CloseQuartersSettings(focal_length_px=F, interpupillary_m=IPD), SIZE)


def test_positions_recover_known_geometry(cq: CloseQuarters) -> None:
    truth = [(0.0, 0.0, 2.0), (-1.2, 0.1, 3.5), (0.8, -0.2, 5.0)]
    pos = cq.positions_m([person_at(*p) for p in truth])
    assert np.allclose(pos, truth, atol=0.01)


def test_close_pairs(cq: CloseQuarters) -> None:
    faces = [person_at(0.0, 0.0, 3.0), person_at(1.0, 0.0, 3.0),  # 1.0 m apart: close
             person_at(0.0, 0.0, 5.0),  # 2 m behind the first, 2.2 m from the second
             person_at(-3.0, 0.0, 3.0)]  # 3 m to the side
    assert cq.observe(faces) == Observation(people_in_view=4, close_pairs=1)
    # two people one behind the other at 1.4 m depth difference: close
    assert cq.observe([person_at(0, 0, 2.0), person_at(0.1, 0, 3.4)]).close_pairs == 1
    assert cq.observe([person_at(0, 0, 2.0), person_at(0.1, 0, 3.6)]).close_pairs == 0


def test_threshold_comes_from_settings() -> None:
    faces = [person_at(0.0, 0.0, 3.0), person_at(1.0, 0.0, 3.0)]
    near = CloseQuarters(CloseQuartersSettings(focal_length_px=F, close_contact_m=0.9), SIZE)
    assert near.observe(faces).close_pairs == 0


def test_a_crowd_counts_every_pair(cq: CloseQuarters) -> None:
    faces = [person_at(0.3 * i, 0.0, 3.0) for i in range(4)]  # all within 0.9 m
    assert cq.observe(faces) == Observation(4, 6)


def test_unplaceable_faces_are_counted_not_paired(cq: CloseQuarters) -> None:
    bad = person_at(0, 0, 3.0)
    lm = bad.landmarks.copy()
    lm[1] = lm[0]  # eyes on top of each other
    faces = [Face(box=bad.box, score=0.9, landmarks=lm), person_at(0.2, 0, 3.0)]
    assert cq.observe(faces) == Observation(2, 0)
    assert cq.observe([]) == Observation(0, 0)


def test_window_summary_keeps_maxima_and_resets(cq: CloseQuarters) -> None:
    cq.observe([person_at(0, 0, 3.0)])
    cq.observe([person_at(0, 0, 3.0), person_at(0.5, 0, 3.0), person_at(4, 0, 3.0)])
    cq.observe([])
    assert cq.window_summary() == WindowSummary(frames=3, max_people_in_view=3,
                                                max_close_pairs=1)
    assert cq.window_summary() == WindowSummary(0, 0, 0)


def test_principal_point_setting() -> None:
    s = CloseQuartersSettings(focal_length_px=F, principal_point_px=(SIZE[0] / 2 + 90, SIZE[1] / 2))
    pos = CloseQuarters(s, SIZE).positions_m([person_at(0.0, 0.0, 2.0)])
    assert pos[0, 0] == pytest.approx(-0.2, abs=0.01)  # 90 px at f=900, 2 m -> 0.2 m
