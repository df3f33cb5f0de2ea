"""The inference loop's work per frame: detect, track, zone, screen, embed, match, decide.

`Pipeline.process(frame)` runs on the daemon's inference thread. Per lane the largest face in
the gate zone presents; up to K of its good frames, spread over the presenting window, are
embedded (once each, all lanes batched into one embedder run) and matched (1:N, or 1:1 with the
template a traveller's token unsealed: edge.decisions.tokens, which also decides without any
comparison in token mode), and their fused embedding decides (edge.decisions.evidence; wiped at
the decision). Thermal readings are fused
per track, only while the visible and thermal frames have the calibration's sizes (else every
track is `unreliable`, reason `calibration_size_mismatch`, the log names the camera and the
`consentgate_thermal_calibration_mismatch` gauge is 1). Decisions come from each lane's
`LaneMachine`; their actions are carried out here (gate commands, boarding) and their events
go to the bus. Frames and crops exist only in this call's locals, embeddings until a decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import structlog

from edge.capture.source import Frame
from edge.decisions.events import DecisionEvent, EventBus, Kind
from edge.decisions.evidence import EvidenceBook, EvidenceRules, Verdict
from edge.decisions.gate_commands import not_taken, send_command
from edge.decisions.lanes import Action, DenyGate, LaneState, MarkBoarded, OpenGate
from edge.decisions.tokens import MatcherLike, NoTokens, TokenHooks
from edge.decisions.zones import Lane as Lane  # re-exported: the daemon and tests build lanes
from edge.decisions.zones import fit_zones
from edge.operations.metrics import DaemonMetrics
from edge.vision.tracker import IoUTracker, Track
from edge.vision.types import Face, FaceEngineLike
from foundation.clock import Clock
from gate_controller.ports import GateCommands
from wire.gate import Event, FaultEvent, PassageEvent, StateEvent, TailgatingEvent
from wire.gate import LaneState as GateLaneState

log = structlog.get_logger(__name__)
MISMATCH_REASON = "calibration_size_mismatch"  # thermal refused: frame sizes != calibration


class BoardingLike(Protocol):
    def mark_boarded(self, consent_id: str) -> None: ...


class CountersLike(Protocol):
    def add(self, field: str, n: int = 1) -> None: ...
    def observe_peak(self, people_in_view: int) -> None: ...


@dataclass
class _TrackInfo:
    lane: str | None = None
    qualifying_since: float | None = None  # capture time of the first good-quality frame
    fusion: Any = None
    thermal_reads: int = 0
    thermal_done: bool = False
    extra: dict[str, object] = field(default_factory=dict)


class Pipeline:
    def __init__(self, *, engine: FaceEngineLike, lanes: list[Lane], matcher: MatcherLike,
                 gate: GateCommands | None, boarding: BoardingLike | None, bus: EventBus,
                 clock: Clock, metrics: DaemonMetrics | None = None,
                 tracker: IoUTracker | None = None, screener: Any = None,
                 close_quarters: Any = None, counters: CountersLike | None = None,
                 on_state: Callable[[str, str, str], None] | None = None,
                 evidence: EvidenceRules | None = None, tokens: TokenHooks | None = None,
                 liveness: Any = None) -> None:
        self.engine = engine
        self.lanes = {lane.machine.lane: lane for lane in lanes}
        self.matcher = matcher
        self.gate = gate
        self.boarding = boarding
        self.bus = bus
        self.clock = clock
        self.metrics = metrics or DaemonMetrics()
        self.tracker = tracker or IoUTracker()
        self.screener = screener
        self.close_quarters = close_quarters
        self.counters = counters
        self.liveness = liveness  # PAD of the presenting tracks (edge.decisions.pad_gate)
        self.on_state = on_state
        self._info: dict[int, _TrackInfo] = {}
        self.evidence = EvidenceBook(evidence or EvidenceRules())
        self.tokens = (tokens or NoTokens()).attach(self.evidence)  # gallery, token or both
        self._published: dict[str, str] = {}
        self._close_pairs = 0
        self._geometry_problem: str | None = None
        if screener is not None:
            self.metrics.thermal_geometry.set(0)
        self.latencies: list[float] = []  # decision latencies (s), for the bench and metrics
        self.sync_states()

    # -- per frame ---------------------------------------------------------------------------
    def process(self, frame: Frame) -> None:
        t0 = time.perf_counter()
        image = frame.image
        faces = self.engine.detect(image)
        update = self.tracker.update(faces, frame.captured_mono)
        fit_zones(self.lanes, image)  # zones in this frame's pixels (ZoneResolutionError)
        in_zone = self._assign_lanes(update.seen)
        for track in update.lost:
            self._info.pop(track.track_id, None)
            for name, lane in self.lanes.items():
                successor = next((t.track_id for t in in_zone[name]
                                  if not lane.machine.decided(t.track_id)), None)
                self._run(lane.machine.track_lost(track.track_id, successor))
        if self.counters is not None:
            if update.new:
                self.counters.add("people_detected", len(update.new))
            self.counters.observe_peak(len(update.seen))
        if update.new:
            self.metrics.people.inc(len(update.new))
        self.metrics.tracks.set(len(update.seen))
        if self.close_quarters is not None:
            self._close_quarters(faces, (image.shape[1], image.shape[0]))

        for name, tracks in in_zone.items():
            machine = self.lanes[name].machine
            if machine.state is LaneState.IDLE:
                for track in tracks:
                    if not machine.decided(track.track_id):
                        self._run(machine.present(track.track_id))
                        break
        if self.liveness is not None:  # PAD of each presenting track, before any match
            self._run(self.liveness.observe(self, in_zone, image, frame.thermal))
        if frame.thermal is not None and self.screener is not None:
            self._screen(in_zone, image, frame.thermal)
        self._match(in_zone, image, frame.captured_mono)
        self.tick()
        self.metrics.frames.inc()
        self.metrics.loop_seconds.observe(time.perf_counter() - t0)

    def tick(self) -> None:
        for name, lane in self.lanes.items():
            evidence = self.evidence.get(name)
            if evidence is not None and evidence.count and lane.machine.match_due \
                    and evidence.track_id == lane.machine.track_id \
                    and (matcher := self.tokens.matcher(name, self.matcher)) is not None:
                self._decide(lane, evidence.track_id, evidence.decide(matcher))  # what is in
            if (told := self.tokens.verdict(name, lane.machine)) is not None:
                self._decide(lane, *told)  # no comparison: a refused token, or none shown
            self._run(lane.machine.tick())
        self.evidence.sweep({name: lane.machine.track_id for name, lane in self.lanes.items()
                             if lane.machine.wants_match})
        self.sync_states()

    # -- gate link ---------------------------------------------------------------------------
    def gate_down(self, reason: str, lane: str | None = None) -> None:
        for name in [lane] if lane else list(self.lanes):
            if name in self.lanes:
                self._run(self.lanes[name].machine.gate_down(reason))
        self.metrics.gate_available.set(0)
        self.sync_states()

    def gate_up(self, lane: str | None = None) -> None:
        for name in [lane] if lane else list(self.lanes):
            if name in self.lanes:
                self._run(self.lanes[name].machine.gate_up())
        self.metrics.gate_available.set(1)
        self.sync_states()

    def on_gate_status(self, lanes: dict[str, GateLaneState]) -> None:
        """The controller's lane states (asked for when the link comes up)."""
        for lane, state in lanes.items():
            if state not in (GateLaneState.CLOSED, GateLaneState.OPEN):
                self.on_gate_event(StateEvent(lane=lane, state=state, reason="status"))

    def on_gate_event(self, event: Event) -> None:
        """A gate/1 event from the controller (passage, tailgating, state, fault)."""
        if isinstance(event, FaultEvent):
            self.bus.emit(DecisionEvent(Kind.FAULT, event.lane or "-", "manual",
                                        event.reason[:200]))
            self.sync_states()
            return
        lane = self.lanes.get(event.lane)
        if lane is None:
            return
        if isinstance(event, PassageEvent):
            self._run(lane.machine.passage(event.grant_id))
        elif isinstance(event, TailgatingEvent):
            self._run(lane.machine.tailgating())
        elif isinstance(event, StateEvent):
            state = event.state
            if state in (GateLaneState.MANUAL, GateLaneState.FAULT, GateLaneState.EMERGENCY_OPEN):
                self._run(lane.machine.gate_down(f"gate {state.value}: {event.reason}"[:200]))
                if state == GateLaneState.EMERGENCY_OPEN and self.on_state is not None:
                    self.on_state(lane.machine.lane, "emergency", "fire alarm: lane open")
                    self._published[lane.machine.lane] = "emergency"
                    return
            elif state == GateLaneState.CLOSED:
                self._run(lane.machine.gate_up())
        self.sync_states()

    # -- internals ---------------------------------------------------------------------------
    def _assign_lanes(self, tracks: list[Track]) -> dict[str, list[Track]]:
        out: dict[str, list[Track]] = {name: [] for name in self.lanes}
        for track in tracks:
            info = self._info.setdefault(track.track_id, _TrackInfo())
            info.lane = None
            for name, lane in self.lanes.items():
                if lane.contains(track.centre):
                    info.lane = name
                    out[name].append(track)
                    break
        for tracks_in in out.values():
            tracks_in.sort(key=lambda t: -t.face.box[2])  # nearest (largest face) first
        return out

    def thermal_geometry_problem(self, image: np.ndarray, thermal: np.ndarray) -> str | None:
        """What is wrong with these frames' sizes for the thermal calibration, or None."""
        calibration = getattr(self.screener, "calibration", None)
        if calibration is None:
            return None
        problems = []
        for what, got, want in (
                ("visible", (image.shape[1], image.shape[0]), tuple(calibration.visible_size)),
                ("thermal", (thermal.shape[1], thermal.shape[0]),
                 tuple(calibration.thermal_size))):
            if got != want:
                problems.append(f"the {what} camera gives {got[0]}x{got[1]} frames but the "
                                f"thermal calibration was made for {want[0]}x{want[1]}")
        return "; ".join(problems) or None

    def _geometry_ok(self, image: np.ndarray, thermal: np.ndarray) -> bool:
        """Checked on every frame (a camera may come back at another resolution); logged when
        it changes, so the operator sees it once, not per frame."""
        problem = self.thermal_geometry_problem(image, thermal)
        if problem != self._geometry_problem:
            if problem is not None:
                log.error("thermal_calibration_mismatch", problem=problem,
                          action="thermal screening refused (every reading unreliable): set "
                                 "the cameras to the calibrated resolution, or re-run "
                                 "`python -m provisioning calibrate-thermal`")
            elif self._geometry_problem is not None:
                log.info("thermal_calibration_match", detail="frame sizes match the thermal "
                                                             "calibration again")
            self._geometry_problem = problem
            self.metrics.thermal_geometry.set(0 if problem is None else 1)
        return problem is None

    def _screen(self, in_zone: dict[str, list[Track]], image: np.ndarray,
                thermal: np.ndarray) -> None:
        todo = [(name, t) for name, ts in in_zone.items() for t in ts
                if not self._info[t.track_id].thermal_done]
        if not self._geometry_ok(image, thermal):
            for name, track in todo:  # fail safe: no pass from mis-mapped pixels
                info = self._info[track.track_id]
                info.thermal_done = True
                info.fusion = None
                self._run(self.lanes[name].machine.thermal(track.track_id, "unreliable",
                                                           MISMATCH_REASON))
            return
        if not todo:
            return
        try:
            readings = self.screener.measure([t.face for _, t in todo], thermal)
        except Exception as exc:  # a bad thermal frame is dropped, never fatal
            log.warning("thermal_frame_dropped", error=str(exc)[:200])
            return
        need = self.screener.settings.fuse_frames
        for (name, track), reading in zip(todo, readings, strict=True):
            info = self._info[track.track_id]
            if info.fusion is None:
                info.fusion = self.screener.new_track()
            info.fusion.add(reading)
            info.thermal_reads += 1
            if info.thermal_reads >= need:
                decision = info.fusion.decide()
                info.thermal_done = True
                info.fusion = None
                self._run(self.lanes[name].machine.thermal(track.track_id, decision.status,
                                                           decision.reason or ""))

    def _match(self, in_zone: dict[str, list[Track]], image: np.ndarray,
               captured: float) -> None:
        batch: list[tuple[Lane, Track, MatcherLike]] = []
        for name, tracks in in_zone.items():
            lane = self.lanes[name]
            if not lane.machine.wants_match or (
                    matcher := self.tokens.matcher(name, self.matcher)) is None:
                continue  # token mode without a usable token: nothing is embedded
            track = next((t for t in tracks if t.track_id == lane.machine.track_id), None)
            if track is None or not self.evidence.for_track(name, track.track_id).due(captured):
                continue
            quality = self.engine.quality(image, track.face)
            if not quality.ok:
                continue
            info = self._info[track.track_id]
            if info.qualifying_since is None:
                info.qualifying_since = captured
            batch.append((lane, track, matcher))
        if not batch:
            return
        probes = self.engine.embed(image, [t.face for _, t, _ in batch])
        self.metrics.embeddings.inc(len(batch))
        try:
            for i, (lane, track, matcher) in enumerate(batch):
                evidence = self.evidence.for_track(lane.machine.lane, track.track_id)
                verdict = evidence.add(probes[i], matcher.match(probes[i]), captured)
                if verdict is None and evidence.complete:
                    verdict = evidence.decide(matcher)
                if verdict is not None:
                    self._decide(lane, track.track_id, verdict)
        finally:
            probes.fill(0.0)  # the batch is wiped here; evidence keeps copies until decided
            del probes

    def _decide(self, lane: Lane, track_id: int, verdict: Verdict) -> None:
        self.evidence.drop(lane.machine.lane)  # the evidence embeddings are zeroed at once
        info = self._info.get(track_id)
        self._run(lane.machine.match(track_id, verdict[0], verdict[1]),
                  since=info.qualifying_since if info is not None else None)

    def _close_quarters(self, faces: list[Face], image_size: tuple[int, int]) -> None:
        """Close-contact events: pairs under the distance that were not there a frame ago."""
        if callable(self.close_quarters) and not hasattr(self.close_quarters, "observe"):
            self.close_quarters = self.close_quarters(image_size)  # built for this camera size
        try:
            pairs = int(self.close_quarters.observe(faces).close_pairs)
        except Exception as exc:
            log.warning("close_quarters_failed", error=str(exc)[:200])
            return
        new_pairs = max(0, pairs - self._close_pairs)
        self._close_pairs = pairs
        if new_pairs and self.counters is not None:
            self.counters.add("close_contacts", new_pairs)

    def _run(self, actions: list[Action], since: float | None = None) -> None:
        for action in actions:
            if isinstance(action, DecisionEvent):
                if action.kind is Kind.GRANTED and not self.lanes[action.lane].machine.granted:
                    continue  # the gate did not take the grant: no "gate opened by face"
                self.metrics.decisions.inc(kind=action.kind.value)
                self.bus.emit(action)
            elif isinstance(action, OpenGate | DenyGate):
                self._command(action, since)
            elif isinstance(action, MarkBoarded):
                self._board(action.consent_id)

    def _command(self, action: OpenGate | DenyGate, since: float | None) -> bool:
        """Send one command; False when the controller did not take it."""
        machine = self.lanes[action.lane].machine
        if self.gate is None:
            self._run(machine.gate_fault("no gate controller configured"))
            return False
        name = "open" if isinstance(action, OpenGate) else "deny"
        try:
            send_command(self.gate, action)
        except Exception as exc:
            self.metrics.gate_errors.inc(cmd=name)
            log.warning("gate_command_failed", cmd=name, lane=action.lane, error=str(exc)[:200])
            if isinstance(action, OpenGate):
                self._run(not_taken(machine, exc))
            return False
        self.metrics.gate_commands.inc(cmd=name)
        if since is not None:
            latency = self.clock.monotonic() - since
            self.latencies.append(latency)
            if len(self.latencies) > 10000:
                del self.latencies[:5000]
            self.metrics.decision_latency.observe(latency)
        return True

    def _board(self, consent_id: str) -> None:
        if self.boarding is None:
            return
        try:
            self.boarding.mark_boarded(consent_id)
        except Exception as exc:
            log.error("mark_boarded_failed", consent=consent_id, error=type(exc).__name__)

    def sync_states(self) -> None:
        for name, lane in self.lanes.items():
            state = lane.machine.state.value
            old = self._published.get(name)
            if old != state:
                if old is not None:
                    self.metrics.lane_state.set(0, lane=name, state=old)
                self._published[name] = state
                self.metrics.lane_state.set(1, lane=name, state=state)
                if self.on_state is not None:
                    self.on_state(name, state, lane.machine.message)
