"""IoU tracker: stable track ids for faces across frames (geometry only, no appearance).

Detections are matched to live tracks greedily by IoU, best pairs first; at low frame rates a
face walking towards the camera may move further than IoU can follow, so a pair that overlaps
too little still matches when the centres are within one face width and the sizes within a
factor of two (scored below every IoU pair). A detection with no partner starts a new track; a
track not seen for `max_missed_s` is dropped and reported lost.
Ids are process-local integers that never leave the box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.vision.types import Face

Box = tuple[float, float, float, float]


def near(a: Box, b: Box) -> bool:
    """Centres within one face width of each other and sizes within a factor of two."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    if min(aw, bw) <= 0 or max(aw, bw) / min(aw, bw) > 2.0:
        return False
    dx = (ax + aw / 2) - (bx + bw / 2)
    dy = (ay + ah / 2) - (by + bh / 2)
    return (dx * dx + dy * dy) ** 0.5 <= max(aw, bw)


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    track_id: int
    face: Face
    first_seen: float
    last_seen: float
    hits: int = 1
    state: dict = field(default_factory=dict)  # per-track scratch owned by the daemon

    @property
    def box(self) -> Box:
        return self.face.box

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.face.box
        return x + w / 2, y + h / 2


@dataclass(frozen=True)
class TrackUpdate:
    seen: list[Track]  # tracks with a detection in this frame (face attached)
    new: list[Track]  # subset of seen that started in this frame
    lost: list[Track]  # tracks dropped in this frame


class IoUTracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed_s: float = 1.0) -> None:
        if not 0 < iou_threshold < 1:
            raise ValueError("iou_threshold must be in (0, 1)")
        self.iou_threshold = iou_threshold
        self.max_missed_s = max_missed_s
        self._tracks: dict[int, Track] = {}
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        return list(self._tracks.values())

    def update(self, faces: list[Face], now: float) -> TrackUpdate:
        live = list(self._tracks.values())
        pairs: list[tuple[float, int, int]] = []
        for a, t in enumerate(live):
            for b, f in enumerate(faces):
                score = iou(t.box, f.box)
                if score < self.iou_threshold:
                    score = 1e-3 * (1.0 + score) if near(t.box, f.box) else 0.0
                if score > 0:
                    pairs.append((score, a, b))
        pairs.sort(reverse=True)
        used_t: set[int] = set()
        used_f: set[int] = set()
        seen: list[Track] = []
        for _, a, b in pairs:
            if a in used_t or b in used_f:
                continue
            used_t.add(a)
            used_f.add(b)
            track = live[a]
            track.face = faces[b]
            track.last_seen = now
            track.hits += 1
            seen.append(track)
        new: list[Track] = []
        for b, face in enumerate(faces):
            if b in used_f:
                continue
            track = Track(self._next_id, face, now, now)
            self._next_id += 1
            self._tracks[track.track_id] = track
            new.append(track)
            seen.append(track)
        lost = [t for i, t in enumerate(live)
                if i not in used_t and now - t.last_seen > self.max_missed_s]
        for t in lost:
            del self._tracks[t.track_id]
        return TrackUpdate(seen, new, lost)

    def clear(self) -> list[Track]:
        lost = list(self._tracks.values())
        self._tracks.clear()
        return lost
