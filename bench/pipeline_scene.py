"""The gate scene of bench/pipeline.py: 1280x720, two lanes, a queue of four people in view.

A helper module of `bench/pipeline.py` (run that; this file on its own does nothing). Each lane
has a traveller at the gate and one waiting behind; every `period_s` the one at the gate goes
through, the one waiting steps up and a new traveller walks in from the back of the hall to
wait. Lane B runs half a period behind lane A, so the lanes present at different moments and
sometimes at once (the pipeline batches them). The clip is rendered once (rendering is the
camera's cost, not the pipeline's) and loops seamlessly: it holds `people_per_lane` visits per
lane, and visit v + people_per_lane is the same person in the same place as visit v.

Truth, per clip frame and lane: which visit is at the front (stepping up or at the gate) and
whether its face centre lies in that lane's gate zone (the zones are set through the public
lane settings, `foundation.settings.LaneSettings`, relative to the frame), so both loops'
decision latency can be timed from the moment a traveller stepped into the zone.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pipeline_common  # noqa: F401  (puts the project root on sys.path)

from edge.screening.face_chips import default_face_photos, face_chip
from edge.screening.synth import Person, SceneRenderer, synthetic_calibration
from foundation.settings import LaneSettings, LanesSettings

SIZE = (1280, 720)
THERMAL_SIZE = (320, 240)
LANE_X = {"A": 320.0, "B": 960.0}  # each lane's gate, centred in its half of the frame
GATE_Y, QUEUE_Y, FAR_Y = 330.0, 230.0, 190.0  # eye line at the gate, in the queue, far away
GATE_W, QUEUE_W, FAR_W = 200.0, 110.0, 70.0  # face widths there (px)
QUEUE_DX = 130.0  # the one waiting stands this far to the outer side (not hidden behind)


def lane_settings() -> LanesSettings:
    """The two lanes and their gate zones, as a settings file gives them (relative to the
    frame, 0..1): each zone holds the face centre of the traveller at the gate (y ~ 350 px),
    not the one waiting behind (y ~ 240 px)."""
    w, h = SIZE
    lanes = []
    for lane, x in LANE_X.items():
        x0, x1 = round((x - 170) / w, 4), round((x + 170) / w, 4)
        y0, y1 = round(290 / h, 4), round(620 / h, 4)
        lanes.append(LaneSettings(lane_id=lane, zone=[(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
    return LanesSettings(lanes=lanes)


def zones_px(settings: LanesSettings) -> dict[str, np.ndarray]:
    """lane id -> (k, 2) float32 zone polygon in frame pixels, through the settings' own
    `zone_pixels` (as the daemon builds each `Lane`)."""
    return {ls.lane_id: np.asarray(ls.zone_pixels(*SIZE), np.float32) for ls in settings.lanes}


def _ease(p: float) -> float:
    p = min(1.0, max(0.0, p))
    return p * p * (3 - 2 * p)


@dataclass(frozen=True)
class Visit:
    """One traveller's visit to lane `lane`: walks in during [t0, t0 + step), waits in the
    queue until t0 + period, steps up during the next `step`, stands at the gate, and walks
    through it (down and out of the frame) during the last `exit` before t0 + 2 * period,
    when the next traveller starts to step up."""

    lane: str
    index: int
    photo: int
    t0: float
    period: float
    step: float
    exit: float = 0.3

    def place(self, t: float) -> Person | None:
        u = t - self.t0
        if u < 0 or u >= 2 * self.period:
            return None
        x = LANE_X[self.lane]
        side = -1.0 if self.lane == "A" else 1.0  # the queue forms on the outer side
        qx = x + side * QUEUE_DX
        leave = 2 * self.period - self.exit
        if u < self.step:  # far -> queue
            p = _ease(u / self.step)
            pos = (qx + side * 60.0 * (1 - p), FAR_Y + (QUEUE_Y - FAR_Y) * p,
                   FAR_W + (QUEUE_W - FAR_W) * p)
        elif u < self.period:  # waiting
            pos = (qx, QUEUE_Y, QUEUE_W)
        elif u < self.period + self.step:  # steps up to the gate
            p = _ease((u - self.period) / self.step)
            pos = (qx + (x - qx) * p, QUEUE_Y + (GATE_Y - QUEUE_Y) * p,
                   QUEUE_W + (GATE_W - QUEUE_W) * p)
        elif u < leave:
            pos = (x, GATE_Y, GATE_W)
        else:  # through the gate: nearer the camera, then below the frame
            p = (u - leave) / self.exit
            pos = (x, GATE_Y + (SIZE[1] + 150 - GATE_Y) * p * p, GATE_W * (1 + 0.3 * p))
        if pos[1] - 0.6 * pos[2] > SIZE[1]:
            return None  # gone below the frame
        return Person(photo=self.photo, x=pos[0], y=pos[1], face_width_px=pos[2],
                      canthus_c=36.6, variant=self.photo)


@dataclass
class GateClip:
    frames: list[tuple[np.ndarray, np.ndarray]]  # (visible BGR, thermal centikelvin)
    in_zone: list[dict[str, int]]  # per frame: lane -> visit key (lane visits modulo the clip)
    front: list[dict[str, int]]  # per frame: lane -> the visit stepping up or at the gate
    fps: float
    photos: list[np.ndarray]  # the face chips rendered; traveller i is photo i
    identities: list[str]
    calibration: object
    lanes: LanesSettings
    visits_per_loop: int


def gate_photos(detect, shared: Path, people: int
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """(chips the scene renders, chips enrolled, identities): per person of ../shared/faces
    the first usable photo is rendered and the second one enrolled, so every decision matches
    a real probe against another photo's template; without that folder, the astronaut alone,
    rendered and enrolled from the same chip (every traveller is her, in other anatomy
    variants)."""
    table = shared / "faces" / "identities.csv"
    found: dict[str, list[np.ndarray]] = {}
    if table.is_file():
        with open(table, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            have = found.setdefault(row["identity"], [])
            if len(have) >= 2:
                continue
            image = cv2.imread(str(shared / "faces" / row["file"]), cv2.IMREAD_COLOR)
            faces = detect(image) if image is not None else []
            if len(faces) != 1:
                continue
            have.append(face_chip(image, np.asarray(faces[0].landmarks, np.float64)[:2]))
    pairs = [(name, chips) for name, chips in found.items() if len(chips) == 2][:people]
    if len(pairs) < people:
        astronaut = default_face_photos()
        return astronaut, astronaut, ["astronaut"]
    return [c[0] for _, c in pairs], [c[1] for _, c in pairs], [n for n, _ in pairs]


def gate_visits(photos: int, *, period_s: float = 1.8, step_s: float = 0.6,
                people_per_lane: int = 4) -> list[Visit]:
    """Every visit that is in view at some time of one loop, both lanes (lane B half a period
    behind); lane A's travellers are the even photos, lane B's the odd ones."""
    visits: list[Visit] = []
    for li, lane in enumerate(LANE_X):
        offset = li * period_s / 2
        for v in range(-3, people_per_lane + 2):
            photo = (li + 2 * (v % people_per_lane)) % photos
            visits.append(Visit(lane, v, photo, offset + (v - 1) * period_s, period_s, step_s))
    return visits


def render_gate_clip(photos: list[np.ndarray], identities: list[str], *, fps: float = 30.0,
                     period_s: float = 1.8, step_s: float = 0.6, people_per_lane: int = 4,
                     seed: int = 5) -> GateClip:
    calibration = synthetic_calibration(SIZE, THERMAL_SIZE, seed=seed)
    renderer = SceneRenderer(calibration, photos, seed=seed)
    settings = lane_settings()
    zones = zones_px(settings)
    loop_s = people_per_lane * period_s
    visits = gate_visits(len(photos), period_s=period_s, step_s=step_s,
                         people_per_lane=people_per_lane)
    frames, in_zone, front = [], [], []
    for i in range(round(loop_s * fps)):
        t = i / fps
        placed = [(v, p) for v in visits if (p := v.place(t)) is not None]
        visible, thermal, _ = renderer.render([p for _, p in placed])
        frames.append((visible, thermal))
        here: dict[str, int] = {}
        front.append({v.lane: v.index % people_per_lane for v, _ in placed
                      if t - v.t0 >= period_s})
        for v, p in placed:
            centre = (p.x, p.y + 0.1 * p.face_width_px)  # the renderer's face box centre
            if cv2.pointPolygonTest(zones[v.lane], centre, False) >= 0:
                here[v.lane] = v.index % people_per_lane
        in_zone.append(here)
    return GateClip(frames, in_zone, front, fps, photos, identities, calibration, settings,
                    people_per_lane)
