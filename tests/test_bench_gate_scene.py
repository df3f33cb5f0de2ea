"""bench/pipeline.py's gate scene: four people in view, two lanes, a seamless loop, zones that
hold the traveller at the gate and not the one waiting (placements only; nothing rendered)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from pipeline_scene import (
    GATE_Y,
    LANE_X,
    QUEUE_Y,
    SIZE,
    gate_visits,
    lane_settings,
    zones_px,
)

PERIOD, STEP, PER_LANE, FPS = 1.8, 0.6, 4, 30.0


def placed(visits, t):
    return [(v, p) for v in visits if (p := v.place(t)) is not None]


def centre(person):
    return (person.x, person.y + 0.1 * person.face_width_px)


def in_zone(zone, person) -> bool:
    return cv2.pointPolygonTest(zone, centre(person), False) >= 0


def test_four_people_in_view_two_per_lane() -> None:
    visits = gate_visits(8, period_s=PERIOD, step_s=STEP, people_per_lane=PER_LANE)
    for i in range(round(PER_LANE * PERIOD * FPS)):
        now = placed(visits, i / FPS)
        assert len(now) in (3, 4), i  # a moment with 3: one went through the gate
        for lane in LANE_X:
            assert 1 <= sum(v.lane == lane for v, _ in now) <= 2
    counts = [len(placed(visits, i / FPS)) for i in range(round(PER_LANE * PERIOD * FPS))]
    assert counts.count(4) > 0.8 * len(counts)


def test_loop_is_seamless() -> None:
    visits = gate_visits(8, period_s=PERIOD, step_s=STEP, people_per_lane=PER_LANE)
    loop = PER_LANE * PERIOD
    for t in (0.0, 0.1, 0.95, 1.7):
        first = sorted((p.photo, round(p.x, 3), round(p.y, 3), round(p.face_width_px, 3))
                       for _, p in placed(visits, t))
        again = sorted((p.photo, round(p.x, 3), round(p.y, 3), round(p.face_width_px, 3))
                       for _, p in placed(visits, t + loop))
        assert first == again


def test_zones_from_relative_settings_hold_the_gate_not_the_queue() -> None:
    settings = lane_settings()
    assert all(0.0 <= c <= 1.0 for ls in settings.lanes for pt in ls.zone for c in pt)
    assert all(ls.zone_resolution is None for ls in settings.lanes)
    zones = zones_px(settings)
    assert set(zones) == set(LANE_X)
    visits = gate_visits(8, period_s=PERIOD, step_s=STEP, people_per_lane=PER_LANE)
    seen_gate = {lane: 0 for lane in LANE_X}
    for i in range(round(PER_LANE * PERIOD * FPS)):
        for v, p in placed(visits, i / FPS):
            other = next(lane for lane in LANE_X if lane != v.lane)
            assert not in_zone(zones[other], p)  # never in the other lane's zone
            if p.y == QUEUE_Y:
                assert not in_zone(zones[v.lane], p)  # waiting: not presenting
            if p.y == GATE_Y:
                assert in_zone(zones[v.lane], p)
                seen_gate[v.lane] += 1
    assert all(n > 0 for n in seen_gate.values())
    assert SIZE == (1280, 720)


@pytest.mark.parametrize("photos", [1, 8])
def test_lanes_take_their_own_travellers(photos: int) -> None:
    visits = gate_visits(photos, period_s=PERIOD, step_s=STEP, people_per_lane=PER_LANE)
    if photos == 8:
        assert {v.photo for v in visits if v.lane == "A"} == {0, 2, 4, 6}
        assert {v.photo for v in visits if v.lane == "B"} == {1, 3, 5, 7}
    else:
        assert {v.photo for v in visits} == {0}
