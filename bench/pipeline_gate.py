"""bench/pipeline.py's gate scene: both loops on 1280x720, two lanes, four people in view.

A helper module of `bench/pipeline.py` (run that; this file on its own does nothing).

* ours: the daemon's `Pipeline` as edge/daemon.py composes it (default detector, IoU tracker
  with the lane settings' parameters, both lanes' zones from `LaneSettings`, thermal screening,
  the default evidence rules), every stage timed through a pass-through proxy.
* naive: `cv2.FaceDetectorYN` + YuNet on every full frame, then embed and match every face in
  either zone on every frame (same embedder and gallery), the first match in a lane deciding.

Decision latency, the same for both loops: from the capture of the first frame in which the
traveller's true face centre is in the lane's zone (scene truth) to the gate command. In
`camera` mode the capture time is the camera's (frames the loop skipped count too).
"""

from __future__ import annotations

import time

import cv2
import numpy as np
from pipeline_common import StageTimes, Timed, frames_of, pct, yunet_faces
from pipeline_scene import SIZE, GateClip, zones_px
from table import print_table

from edge.decisions.events import EventBus
from edge.decisions.evidence import EvidenceRules
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.pipeline import Lane, Pipeline
from edge.screening.thermal import ThermalScreener
from edge.vision.tracker import IoUTracker
from foundation.clock import SystemClock
from foundation.settings import ThermalSettings
from gate_controller.fake_client import FakeGateClient
from wire.gate import PassageEvent


class Visits:
    """Per lane, the traveller at the front now (scene truth) and when they stepped into the
    zone: the first frame in which the truth puts their face centre in it or the loop itself
    saw a face there, whichever is earlier. A lane's first grant for a visit decides it."""

    def __init__(self, clip: GateClip) -> None:
        self.clip = clip
        self.current: dict[str, list] = {}  # lane -> [visit key, entered at or None]
        self.decided: set[tuple[str, int, float]] = set()
        self.latencies: list[float] = []
        self.visits = 0
        self.missed = 0  # left the front (went through or timed out) without a grant

    def _entered_at(self, lane: str, index: int, key: int, frame_time: float,
                    source) -> float:
        if source is None:
            return frame_time  # max mode: every frame is processed, this is the first one
        n = len(self.clip.in_zone)
        j = index
        for _ in range(n):  # back to the first clip frame of this visit in the zone
            if self.clip.in_zone[(j - 1) % n].get(lane) != key:
                break
            j -= 1
        return source.read_at.get(j % n, frame_time)

    def frame(self, index: int, frame_time: float, source, seen: set[str]) -> None:
        """Clip frame `index` was processed; `seen`: lanes where the loop saw a face in the
        zone in it."""
        for lane in zones_px(self.clip.lanes):
            key = self.clip.front[index].get(lane)
            now = self.current.get(lane)
            if now is not None and now[0] != key:  # that traveller left the front
                self.missed += (lane, now[0], now[1]) not in self.decided
            if key is None:
                self.current.pop(lane, None)
                continue
            if now is None or now[0] != key:
                now = self.current[lane] = [key, None]
                self.visits += 1
            if now[1] is None:
                if self.clip.in_zone[index].get(lane) == key:
                    now[1] = self._entered_at(lane, index, key, frame_time, source)
                elif lane in seen:
                    now[1] = frame_time

    def granted(self, lane: str, at: float) -> bool:
        now = self.current.get(lane)
        if now is None or now[1] is None or (lane, now[0], now[1]) in self.decided:
            return False
        self.decided.add((lane, now[0], now[1]))
        self.latencies.append(at - now[1])
        return True


def _lanes_seen(faces, zones: dict[str, np.ndarray]) -> dict[str, list]:
    """lane -> the faces whose box centre is in its zone (first zone that holds it)."""
    out: dict[str, list] = {}
    for face in faces:
        centre = (face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2)
        lane = next((name for name, zone in zones.items()
                     if cv2.pointPolygonTest(zone, centre, False) >= 0), None)
        if lane is not None:
            out.setdefault(lane, []).append(face)
    return out


def _index_of(clip: GateClip):
    by_id = {id(visible): i for i, (visible, _) in enumerate(clip.frames)}
    return lambda frame: by_id[id(frame.image)]


def _result(n: int, elapsed: float, visits: Visits, embeddings: int, grants: int,
            times: StageTimes, loop: list[float]) -> dict:
    return {"fps": round(n / elapsed, 1), "frames": n, "visits": visits.visits,
            "decided": len(visits.latencies), "missed": visits.missed, "grants": grants,
            "embeddings": embeddings,
            "latency_p50_ms": pct(visits.latencies, 50),
            "latency_p95_ms": pct(visits.latencies, 95),
            "latency_max_ms": pct(visits.latencies, 100),
            "stages": times.table(n, loop)}


def run_gate_ours(engine, gallery, clip: GateClip, mode: str, camera_fps: float,
                  seconds: float, tracker_settings) -> dict:
    clock = SystemClock()
    gate = FakeGateClient(tuple(zones_px(clip.lanes)))
    times = StageTimes()
    timed_engine = Timed(engine, times, {"detect": "detect", "quality": "quality",
                                         "embed": "embed"}, keep=("detect",))
    tracker = Timed(IoUTracker(tracker_settings.track_iou, tracker_settings.track_max_missed_s,
                               tracker_settings.track_min_hits), times, {"update": "track"})
    screener = Timed(ThermalScreener(clip.calibration, ThermalSettings()), times,
                     {"measure": "thermal"})
    matcher = Timed(gallery, times, {"match": "match"})
    lanes = [Lane.from_settings(LaneMachine(ls.lane_id, LaneRules(thermal_enabled=True), clock),
                                ls) for ls in clip.lanes.lanes]  # as edge/daemon.py builds them
    pipeline = Pipeline(engine=timed_engine, lanes=lanes, matcher=matcher, gate=gate,
                        boarding=None, bus=EventBus([]), clock=clock, tracker=tracker,
                        screener=screener, evidence=EvidenceRules.from_settings(clip.lanes))
    visits = Visits(clip)
    zones = zones_px(clip.lanes)
    index_of = _index_of(clip)
    source_box: list = []
    n = grants = 0
    loop: list[float] = []
    t0 = time.perf_counter()
    for frame in frames_of(clip.frames, mode, camera_fps, seconds, source_box):
        before = len(gate.calls)
        s = time.perf_counter()
        pipeline.process(frame)
        loop.append(time.perf_counter() - s)
        at = time.monotonic()
        seen = set(_lanes_seen(timed_engine.last.get("detect", []), zones))
        visits.frame(index_of(frame), frame.captured_mono, source_box[0] if source_box else None,
                     seen)
        n += 1
        for call in gate.calls[before:]:
            if call[0] == "open":  # the traveller walks through at once
                grants += 1
                visits.granted(call[1], at)
                pipeline.on_gate_event(PassageEvent(lane=call[1], grant_id=call[2]))
    elapsed = time.perf_counter() - t0
    return _result(n, elapsed, visits, int(pipeline.metrics.embeddings.value()), grants,
                   times, loop)


def run_gate_naive(yunet_path, engine, gallery, clip: GateClip, mode: str, camera_fps: float,
                   seconds: float) -> dict:
    detector = cv2.FaceDetectorYN.create(str(yunet_path), "", SIZE, 0.6, 0.3, 5000)
    zones = zones_px(clip.lanes)
    times = StageTimes()
    visits = Visits(clip)
    index_of = _index_of(clip)
    source_box: list = []
    n = grants = embeddings = 0
    loop: list[float] = []
    t0 = time.perf_counter()
    for frame in frames_of(clip.frames, mode, camera_fps, seconds, source_box):
        s = time.perf_counter()
        faces = yunet_faces(detector, frame.image)
        t1 = time.perf_counter()
        times.add("detect", t1 - s)
        in_zone = _lanes_seen(faces, zones)
        placed = [(lane, face) for lane, fs in in_zone.items() for face in fs]
        granted: list[str] = []
        if placed:
            t2 = time.perf_counter()
            probes = engine.embed(frame.image, [f for _, f in placed])  # every face, every frame
            t3 = time.perf_counter()
            times.add("embed", t3 - t2)
            embeddings += len(placed)
            for (lane, _), probe in zip(placed, probes, strict=True):
                t4 = time.perf_counter()
                result = gallery.match(probe)
                times.add("match", time.perf_counter() - t4)
                if result.consent_id is not None and lane not in granted:
                    granted.append(lane)
            probes.fill(0.0)
        loop.append(time.perf_counter() - s)
        at = time.monotonic()
        visits.frame(index_of(frame), frame.captured_mono, source_box[0] if source_box else None,
                     set(in_zone))
        for lane in granted:
            if visits.granted(lane, at):
                grants += 1
        n += 1
    elapsed = time.perf_counter() - t0
    return _result(n, elapsed, visits, embeddings, grants, times, loop)


GATE_ROWS = {"ours": "ours (pipeline)", "naive": "naive YuNet+embed/frame"}
STAGES = ("detect", "track", "thermal", "quality", "embed", "match", "other", "loop")


def print_gate(rows: list[dict], clip: GateClip, camera_fps: float) -> None:
    print(f"\ngate scene: {len(clip.frames)} frames {SIZE[0]}x{SIZE[1]} + thermal "
          f"{clip.calibration.thermal_size[0]}x{clip.calibration.thermal_size[1]}, "  # type: ignore[attr-defined]
          f"2 lanes, 4 people in view, {len(clip.identities)} people enrolled")
    print_table((("mode", "8s"), ("loop", "24s"), ("fps", "6.1f"), ("visits", "6d"),
                 ("decided", "7d"), ("missed", "6d"), ("embeds", "6d"), ("p50 ms", ">7s"),
                 ("p95 ms", ">7s"), ("max ms", ">7s")),
                [(row["mode"], name, r["fps"], r["visits"], r["decided"], r["missed"],
                  r["embeddings"], r["latency_p50_ms"], r["latency_p95_ms"], r["latency_max_ms"])
                 for row in rows for key, name in GATE_ROWS.items() for r in (row[key],)])
    print("\nper-stage cost, ms per frame (mean over all frames; camera mode)")
    cam = rows[-1]
    print(f"{'stage':10s} " + " ".join(f"{GATE_ROWS[k]:>24s}" for k in GATE_ROWS))
    for stage in STAGES:
        cells = []
        for key in GATE_ROWS:
            s = cam[key]["stages"].get(stage)
            cells.append(f"{'-' if s is None else s['per_frame_ms']:>24}")
        print(f"{stage:10s} " + " ".join(cells))
    ours, naive = cam["ours"], cam["naive"]
    print(f"targets (camera {camera_fps:g} fps): >= 30 fps sustained -> {ours['fps']}; "
          f"p95 <= 100 ms -> {ours['latency_p95_ms']}; p95 no worse than naive "
          f"({naive['latency_p95_ms']}) -> "
          f"{'yes' if _le(ours['latency_p95_ms'], naive['latency_p95_ms']) else 'no'}")


def _le(a: float | None, b: float | None) -> bool:
    return a is not None and (b is None or a <= b)
