"""IoU tracker: stable track ids for faces across frames (geometry only, no appearance).

Each live track predicts where its face is now from a constant-velocity estimate (smoothed
over its last matches; never further ahead than `max_missed_s`). Detections are matched to the
predictions greedily, confirmed tracks before tentative ones and best pairs first, by IoU; at
low frame rates, or after the detector missed a frame, a face walking towards the camera may
move further than IoU can follow, so a pair that overlaps too little still matches when the
centres are within one face width and the sizes within a factor of two (scored below every IoU
pair).

A detection with no partner starts a *tentative* track. It becomes a person (reported in
`new`, and in `seen` from then on) only once it was detected in `min_hits` frames in a row: a
one-frame false detection beside a real face (the detector does this on the synthetic walk-up)
is dropped silently instead of counting as another traveller. A confirmed track not seen for
`max_missed_s` is dropped and reported lost.
Ids are process-local integers that never leave the box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.vision.types import Face

Box = tuple[float, float, float, float]
_SMOOTH = 0.5  # weight of the newest velocity measurement


def near(a: Box, b: Box) -> bool:
    """Centres within one face width of each other and sizes within a factor of two."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    if min(aw, bw) <= 0 or max(aw, bw) / min(aw, bw) > 2.0:
        return False
    dx = (ax + aw / 2) - (bx + bw / 2)
    dy = (ay + ah / 2) - (by + bh / 2)
    distance: float = (dx * dx + dy * dy) ** 0.5
    return distance <= max(aw, bw)


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
    confirmed: bool = False
    velocity: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # box units per second
    state: dict[str, object] = field(default_factory=dict)  # per-track scratch owned by the daemon

    @property
    def box(self) -> Box:
        return self.face.box

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.face.box
        return x + w / 2, y + h / 2

    def predict(self, now: float, horizon_s: float) -> Box:
        """Where the face should be at `now` (constant velocity, at most `horizon_s` ahead)."""
        dt = min(max(0.0, now - self.last_seen), horizon_s)
        x, y, w, h = self.box
        vx, vy, vw, vh = self.velocity
        return x + vx * dt, y + vy * dt, max(1.0, w + vw * dt), max(1.0, h + vh * dt)

    def observe(self, face: Face, now: float) -> None:
        dt = now - self.last_seen
        if dt > 0:
            mx, my, mw, mh = ((b - a) / dt for a, b in zip(self.box, face.box, strict=True))
            vx, vy, vw, vh = self.velocity
            self.velocity = (_SMOOTH * mx + (1 - _SMOOTH) * vx, _SMOOTH * my + (1 - _SMOOTH) * vy,
                             _SMOOTH * mw + (1 - _SMOOTH) * vw, _SMOOTH * mh + (1 - _SMOOTH) * vh)
        self.face = face
        self.last_seen = now
        self.hits += 1


@dataclass(frozen=True)
class TrackUpdate:
    seen: list[Track]  # confirmed tracks with a detection in this frame (face attached)
    new: list[Track]  # subset of seen confirmed in this frame (a new person)
    lost: list[Track]  # confirmed tracks dropped in this frame


class IoUTracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed_s: float = 1.0,
                 min_hits: int = 2) -> None:
        if not 0 < iou_threshold < 1:
            raise ValueError("iou_threshold must be in (0, 1)")
        if min_hits < 1:
            raise ValueError("min_hits must be at least 1")
        self.iou_threshold = iou_threshold
        self.max_missed_s = max_missed_s
        self.min_hits = min_hits
        self._tracks: dict[int, Track] = {}
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """Every live track, tentative ones included."""
        return list(self._tracks.values())

    def update(self, faces: list[Face], now: float) -> TrackUpdate:
        live = list(self._tracks.values())
        pairs: list[tuple[bool, float, int, int]] = []
        for a, t in enumerate(live):
            predicted = t.predict(now, self.max_missed_s)
            for b, f in enumerate(faces):
                score = max(iou(predicted, f.box), iou(t.box, f.box))
                if score < self.iou_threshold:
                    close = near(predicted, f.box) or near(t.box, f.box)
                    score = 1e-3 * (1.0 + score) if close else 0.0
                if score > 0:
                    pairs.append((t.confirmed, score, a, b))
        pairs.sort(reverse=True)  # confirmed tracks first, then best score
        used_t: set[int] = set()
        used_f: set[int] = set()
        seen: list[Track] = []
        new: list[Track] = []
        for _, _, a, b in pairs:
            if a in used_t or b in used_f:
                continue
            used_t.add(a)
            used_f.add(b)
            track = live[a]
            track.observe(faces[b], now)
            if not track.confirmed and track.hits >= self.min_hits:
                track.confirmed = True
                new.append(track)
            if track.confirmed:
                seen.append(track)
        for b, face in enumerate(faces):
            if b in used_f:
                continue
            track = Track(self._next_id, face, now, now)
            self._next_id += 1
            self._tracks[track.track_id] = track
            if self.min_hits <= 1:
                track.confirmed = True
                new.append(track)
                seen.append(track)
        lost: list[Track] = []
        for i, t in enumerate(live):
            if i in used_t:
                continue
            if not t.confirmed:  # a tentative track must be seen in consecutive frames
                del self._tracks[t.track_id]
            elif now - t.last_seen > self.max_missed_s:
                del self._tracks[t.track_id]
                lost.append(t)
        return TrackUpdate(seen, new, lost)

    def clear(self) -> list[Track]:
        lost = [t for t in self._tracks.values() if t.confirmed]
        self._tracks.clear()
        return lost
