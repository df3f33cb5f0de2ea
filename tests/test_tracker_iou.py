"""IoU tracker: stable ids while a face moves, new ids for new faces, lost after a gap."""

from __future__ import annotations

import numpy as np

from edge.vision.tracker import IoUTracker, iou
from edge.vision.types import Face


def face(x: float, y: float, w: float = 100, h: float = 120) -> Face:
    return Face((x, y, w, h), 0.9, np.zeros((5, 2), np.float32))


def test_iou_basics() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert abs(iou((0, 0, 10, 10), (5, 0, 10, 10)) - 50 / 150) < 1e-9


def test_ids_stable_while_walking() -> None:
    t = IoUTracker(max_missed_s=0.5)
    first = t.update([face(100, 100)], 0.0)
    tid = first.new[0].track_id
    for i in range(1, 30):
        up = t.update([face(100 + 8 * i, 100 + 3 * i)], i / 30)
        assert [tr.track_id for tr in up.seen] == [tid] and not up.new


def test_two_people_keep_their_ids_and_new_face_gets_new_id() -> None:
    t = IoUTracker()
    up = t.update([face(0, 0), face(300, 0)], 0.0)
    a, b = (tr.track_id for tr in up.seen)
    up = t.update([face(305, 2), face(4, 1)], 0.1)  # order swapped in the detector output
    ids = {tr.track_id: tr.box[0] for tr in up.seen}
    assert ids[a] == 4 and ids[b] == 305
    up = t.update([face(4, 1), face(305, 2), face(600, 0)], 0.2)
    assert len(up.new) == 1 and up.new[0].track_id not in (a, b)


def test_lost_after_gap_then_new_id() -> None:
    t = IoUTracker(max_missed_s=0.5)
    tid = t.update([face(0, 0)], 0.0).new[0].track_id
    assert t.update([], 0.3).lost == []
    lost = t.update([], 0.6).lost
    assert [tr.track_id for tr in lost] == [tid]
    assert t.update([face(0, 0)], 0.7).new[0].track_id != tid


def test_fast_approach_at_low_fps_keeps_the_track() -> None:
    t = IoUTracker()
    tid = t.update([face(130, 150, 70, 80)], 0.0).new[0].track_id
    up = t.update([face(190, 155, 100, 125)], 0.3)  # IoU < 0.3, but the same walker
    assert [tr.track_id for tr in up.seen] == [tid] and not up.new


def test_far_jump_is_a_new_person() -> None:
    t = IoUTracker()
    t.update([face(0, 0, 60, 60)], 0.0)
    assert len(t.update([face(400, 300, 60, 60)], 0.1).new) == 1
