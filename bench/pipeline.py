"""Edge pipeline benchmark on the synthetic scene: sustained fps and decision latency.

    .venv/bin/python bench/pipeline.py [--scene all|clip|gate] [--seconds 15]
        [--gate-seconds 20] [--camera-fps 30] [--detector D] [--json]

Two scenes. The gate scene (`--scene gate`; bench/pipeline_gate.py, bench/pipeline_scene.py):
1280x720, two lanes, a queue of four people in view, ours and the naive loop with per-stage
costs and decision latency from the moment a traveller steps into the zone. The one-person
clip (`--scene clip`), below: one traveller (the astronaut, enrolled in a real SQLCipher store
in a temp folder) walks up to the gate over and over (a pre-rendered clip: rendering is the
camera's job, not the pipeline's). Two loops process the same frames in the same run:

* ours: the daemon's `Pipeline` (default detector, IoU tracker, gate zone, quality gate, up to
  K = 3 evidence frames per track, one embedding each, a frame far above the threshold granting
  at once, gallery match, lane machine, thermal screening of the radiometric frame); and, in
  the same run, its cost rows: `ours, 1 frame` (K = 1, the first good frame decides) and `ours,
  3 frames fused` (no early grant: always three embeddings, spread >= 0.15 s, then the fused
  match: the evidence rule's full cost in embeddings and latency), and `ours + thermal PAD`
  (the daemon's default evidence with PAD required: 5 PAD frames of the presenting track
  fused before the first embedding; PAD's own cost per face is bench/pad.py's; since PAD's
  frames come before the first qualifying frame, every `ours` row also times its grants from
  the moment the track presented)
* naive baseline: `cv2.FaceDetectorYN` with YuNet on every frame, then embed and match every
  face in the zone on every frame (the same embedder and gallery), no tracker, no thermal.
* `ours, token (1:1)`: the same pipeline on a token gate (settings matching.mode = "token"): the
  traveller's key is shown before each walk-up (as a scanner would send it), the box unseals
  their one template and compares 1:1; no gallery search. Its cost per decision (token decode,
  lookup and AES-GCM unseal, then the 1:1 comparison) is timed on its own as well, beside the
  gallery's 1:N match of the same probe (the work it replaces), and so is the camera's QR read
  (its own thread, not on the decision path): the `token costs` table.

Two modes each: `max` feeds frames as fast as the loop takes them (throughput fps), and
`camera` plays the clip at --camera-fps through the daemon's real `LatestFrameReader`
(sustained fps, capped by the camera; latency includes frame age). Decision latency is the
time from the arrival of the first qualifying frame (face in the zone, good quality; for the
baseline: face in the zone) to the gate command. The gate is an in-process recorder (the
loopback round trip to the real controller adds ~1 ms; see bench/gate.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from pipeline_common import (  # also puts the project root on sys.path
    ROOT,
    enrol_chips,
    find_yunet,
    frames_of,
    model_dir,
    open_store,
    pct,
    yunet_faces,
)
from table import print_table

from edge.decisions.events import EventBus
from edge.decisions.evidence import EvidenceRules
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.pipeline import Lane, Pipeline
from edge.screening.synth import (
    SceneRenderer,
    default_face_photos,
    synthetic_calibration,
)
from edge.screening.synth_source import SyntheticScene
from edge.screening.thermal import ThermalScreener
from foundation.clock import FakeClock, SystemClock
from foundation.settings import LanesSettings, ThermalSettings, VisionSettings
from gate_controller.fake_client import FakeGateClient
from wire.gate import PassageEvent

ZONE = np.array([(200, 90), (440, 90), (440, 420), (200, 420)], np.float32)


def render_clip(fps: float = 25.0) -> tuple[list[tuple[np.ndarray, np.ndarray]], object]:
    clock = FakeClock()
    calibration = synthetic_calibration((640, 480), (160, 120), seed=3)
    scene = SyntheticScene(SceneRenderer(calibration, default_face_photos(), seed=3), clock)
    walk = scene.walk(0, 36.6, approach_s=0.6, dwell_s=0.8)
    frames = []
    while not scene.done(walk):
        frames.append(scene.render_now())
        clock.advance(1.0 / fps)
    frames.append(scene.render_now())  # empty frame: the traveller went through
    return frames, calibration


# the evidence rules of the `ours` rows: the daemon's default, one frame, and three always fused
DAEMON_EVIDENCE = EvidenceRules.from_settings(LanesSettings())  # as edge/daemon.py builds it
EVIDENCE = {"ours": DAEMON_EVIDENCE,
            "ours_k1": dataclasses.replace(DAEMON_EVIDENCE, frames=1),
            "ours_fused": dataclasses.replace(DAEMON_EVIDENCE, frames=3, strong_margin=0.99)}
ROW_NAMES = {"ours": "ours (pipeline)", "ours_k1": "ours, 1 frame",
             "ours_fused": "ours, 3 frames fused", "ours_pad": "ours + thermal PAD",
             "ours_token": "ours, token (1:1)",
             "baseline": "naive YuNet+embed/frame"}


def run_ours(engine, gallery, calibration, clip, mode, camera_fps, seconds,
             evidence: EvidenceRules | None = None, sealed=None, token: str | None = None,
             pad: bool = False) -> dict:
    clock = SystemClock()
    gate = FakeGateClient()
    tokens = None
    if sealed is not None:  # a token gate: the key is shown before each walk-up
        from edge.decisions.tokens import TokenLanes

        tokens = TokenLanes("token", sealed.open, clock, ["A"], threshold=engine.threshold,
                            hold_s=15.0)
    liveness = None
    if pad:  # thermal PAD on the presenting track before the match (edge.decisions.pad_gate)
        from edge.decisions.liveness import LivenessRules
        from edge.decisions.pad_gate import PadGate
        from edge.screening.pad import PadDetector

        liveness = PadGate(PadDetector(calibration), LivenessRules())
    pipeline = Pipeline(engine=engine,
                        lanes=[Lane(LaneMachine("A", LaneRules(
                            thermal_enabled=True, pad_required=pad), clock), ZONE)],
                        matcher=gallery, gate=gate, boarding=None,
                        bus=EventBus([lambda e: presented.append(time.perf_counter())
                                      if e.kind.value == "presented" else None]),
                        clock=clock, screener=ThermalScreener(calibration, ThermalSettings()),
                        evidence=evidence or DAEMON_EVIDENCE, tokens=tokens, liveness=liveness)
    n = 0
    presented: list[float] = []  # when each track presented (PAD, if any, starts then)
    from_presented: list[float] = []
    t0 = time.perf_counter()
    for frame in frames_of(clip, mode, camera_fps, seconds):
        if tokens is not None and token and tokens.held("A") is None \
                and pipeline.lanes["A"].machine.state.value == "idle":
            tokens.submit(token, "A", "bench")
        before = len(gate.commands("open"))
        pipeline.process(frame)
        n += 1
        opens = gate.commands("open")
        if len(opens) > before:  # the traveller walks through at once
            if presented:
                from_presented.append(time.perf_counter() - presented[-1])
            pipeline.on_gate_event(PassageEvent(lane="A", grant_id=opens[-1][2]))
    elapsed = time.perf_counter() - t0
    out = {"fps": round(n / elapsed, 1), "frames": n, "decisions": len(gate.commands("open")),
           "embeddings": int(pipeline.metrics.embeddings.value()),
           "latency_p50_ms": pct(pipeline.latencies, 50),
           "latency_p95_ms": pct(pipeline.latencies, 95),
           "presented_to_open_p50_ms": pct(from_presented, 50),
           "presented_to_open_p95_ms": pct(from_presented, 95)}
    if tokens is not None:
        out["token_open_p95_ms"] = pct(tokens.open_seconds, 95)
        tokens.close()
    return out


def token_costs(engine, store, gallery, token: str, clip, runs: int = 300) -> dict:
    """Per decision on a token gate: decode + lookup + unseal, and the 1:1 comparison; beside
    them the gallery's 1:N match of the same probe, and the camera thread's QR read."""
    import segno

    from edge.capture.codes import QrCodes
    from edge.consent.sealed import SealedTemplates

    clock = SystemClock()
    sealed = SealedTemplates(store, clock)
    chip = default_face_photos()[0]
    probe = engine.embed(chip, engine.detect(chip)[:1])[0]
    opened, compared, total, gallery_1n = [], [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        unsealed = sealed.open(token)
        t1 = time.perf_counter()
        assert unsealed.verify(probe, engine.threshold, clock.now()).matched
        t2 = time.perf_counter()
        unsealed.wipe()
        gallery.match(probe)
        t3 = time.perf_counter()
        opened.append(t1 - t0)
        compared.append(t2 - t1)
        total.append(t2 - t0)
        gallery_1n.append(t3 - t2)
    rows = np.array(list(segno.make(token, error="m").matrix_iter(scale=4, border=4)), np.uint8)
    shown = clip[len(clip) // 2][0].copy()
    shown[290:290 + rows.shape[0], 455:455 + rows.shape[1]] = np.where(rows == 1, 0, 255)[
        ..., None]
    codes, read_with, read_without = QrCodes(), [], []
    for _ in range(40):
        t0 = time.perf_counter()
        assert [c[0] for c in codes.read(shown)] == [token]
        t1 = time.perf_counter()
        codes.read(clip[len(clip) // 2][0])
        read_with.append(t1 - t0)
        read_without.append(time.perf_counter() - t1)
    probe.fill(0.0)
    return {name: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95)} for name, v in (
        ("decode_unseal", opened), ("compare_1to1", compared), ("token_total", total),
        ("gallery_1toN", gallery_1n), ("qr_read_code", read_with),
        ("qr_read_none", read_without))}


def run_baseline(yunet_path, engine, gallery, clip, mode, camera_fps, seconds) -> dict:
    detector = cv2.FaceDetectorYN.create(str(yunet_path), "", (640, 480), 0.6, 0.3, 5000)
    n = decisions = embeddings = 0
    latencies: list[float] = []
    first_in_zone: float | None = None
    decided = False
    last_index = -1
    t0 = time.perf_counter()
    for frame in frames_of(clip, mode, camera_fps, seconds):
        index = (frame.seq - 1) % len(clip) if mode == "max" else None
        faces = yunet_faces(detector, frame.image)
        in_zone = [f for f in faces if cv2.pointPolygonTest(
            ZONE, (f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2), False) >= 0]
        wrapped = (index is not None and index < last_index) or not faces
        last_index = index if index is not None else last_index
        if wrapped:
            first_in_zone, decided = None, False
        if in_zone:
            if first_in_zone is None:
                first_in_zone = frame.captured_mono
            probes = engine.embed(frame.image, in_zone)  # every face, every frame
            embeddings += len(in_zone)
            for probe in probes:
                if gallery.match(probe).consent_id is not None and not decided:
                    decided = True
                    decisions += 1
                    latencies.append(time.monotonic() - first_in_zone)
            probes.fill(0.0)
        n += 1
    elapsed = time.perf_counter() - t0
    return {"fps": round(n / elapsed, 1), "frames": n, "decisions": decisions,
            "embeddings": embeddings, "latency_p50_ms": pct(latencies, 50),
            "latency_p95_ms": pct(latencies, 95)}


def enrolled_gallery(engine, workdir: Path, chips: list[np.ndarray] | None = None):
    """A real SQLCipher store in `workdir` with `chips` (default: the astronaut) enrolled."""
    from edge.consent.gallery import Gallery

    store = open_store(workdir)
    enrol_chips(engine, store, chips or default_face_photos()[:1])
    return store, Gallery(store, SystemClock(), engine.threshold, 0.05)


def sealed_token(engine, store) -> str:
    """The astronaut again, enrolled on a token gate: returns their key (the gallery never
    sees this template)."""
    from edge.consent.sealed import SealedTemplates

    chip = default_face_photos()[0]
    consent = store.grant_consent("BENCH2", "boarding", "bench", time.time() + 3600, "bench")
    probe = engine.embed(chip, engine.detect(chip)[:1])
    _, key = SealedTemplates(store, SystemClock()).enrol(consent.consent_id, [probe[0]],
                                                          engine.embedder_name, "bench")
    token = key.token()
    key.wipe()
    return token


def run_clip(args, engine, yunet) -> tuple[dict, list[dict], dict]:
    """The one-person clip: every `ours` row, the baseline, the token costs."""
    clip, calibration = render_clip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store, gallery = enrolled_gallery(engine, Path(tmp))
        token = sealed_token(engine, store)
        from edge.consent.sealed import SealedTemplates

        sealed = SealedTemplates(store, SystemClock())
        try:
            costs = token_costs(engine, store, gallery, token, clip)
            for mode in ("max", "camera"):
                row: dict = {"mode": mode}
                for key, evidence in EVIDENCE.items():
                    row[key] = run_ours(engine, gallery, calibration, clip, mode,
                                        args.camera_fps, args.seconds, evidence)
                row["ours_pad"] = run_ours(engine, gallery, calibration, clip, mode,
                                           args.camera_fps, args.seconds, pad=True)
                row["ours_token"] = run_ours(engine, gallery, calibration, clip, mode,
                                             args.camera_fps, args.seconds, sealed=sealed,
                                             token=token)
                row["baseline"] = run_baseline(yunet, engine, gallery, clip, mode,
                                               args.camera_fps, args.seconds)
                rows.append(row)
        finally:
            gallery.close()
            store.close()
    return {"frames": len(clip)}, rows, costs


def run_gate(args, engine, yunet) -> tuple[dict, list[dict]]:
    """The gate scene (bench/pipeline_gate.py): ours and the naive loop, max and camera."""
    from pipeline_gate import print_gate, run_gate_naive, run_gate_ours
    from pipeline_scene import gate_photos, render_gate_clip

    photos, enrol, names = gate_photos(engine.detect, ROOT.parent / "shared", 8)
    clip = render_gate_clip(photos, names, fps=args.camera_fps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store, gallery = enrolled_gallery(engine, Path(tmp), enrol)
        try:
            for mode in ("max", "camera"):
                rows.append({"mode": mode, "ours": run_gate_ours(
                    engine, gallery, clip, mode, args.camera_fps, args.gate_seconds,
                    clip.lanes), "naive": run_gate_naive(
                    yunet, engine, gallery, clip, mode, args.camera_fps, args.gate_seconds)})
        finally:
            gallery.close()
            store.close()
    print_gate(rows, clip, args.camera_fps)
    info = {"frames": len(clip.frames), "size": [1280, 720], "lanes": 2, "in_view": 4,
            "enrolled": len(clip.identities), "visits_per_loop": 2 * clip.visits_per_loop,
            "enrolled_from": "another photo" if enrol is not photos else "the rendered photo",
            "seconds": args.gate_seconds}
    return info, rows


def print_clip(args, machine: str, rows: list[dict], costs: dict) -> None:
    print(f"pipeline benchmark ({machine}); clip 640x480 + thermal 160x120")
    print_table((("mode", "8s"), ("loop", "26s"), ("fps", "7.1f"), ("frames", "7d"),
                 ("decisions", "9d"), ("embeds", "7d"), ("p50 ms", ">8s"), ("p95 ms", ">8s")),
                [(row["mode"], name, r["fps"], r["frames"], r["decisions"], r["embeddings"],
                  r["latency_p50_ms"], r["latency_p95_ms"])
                 for row in rows for key, name in ROW_NAMES.items() for r in (row[key],)])
    for row in rows:  # PAD's frames come before the first qualifying frame: time them too
        print(f"{row['mode']:8s} presented -> gate command p50/p95 ms: ours "
              f"{row['ours']['presented_to_open_p50_ms']}/{row['ours']['presented_to_open_p95_ms']}"
              f", ours + thermal PAD {row['ours_pad']['presented_to_open_p50_ms']}/"
              f"{row['ours_pad']['presented_to_open_p95_ms']}")
    cam = rows[-1]["ours"]
    print(f"targets: >= 30 fps sustained, p95 <= 150 ms -> fps {rows[0]['ours']['fps']} (max), "
          f"{cam['fps']} (camera {args.camera_fps:g} fps); p95 {cam['latency_p95_ms']} ms")
    print("\ntoken costs per decision (token gate), beside what they replace or run beside")
    for name, words in (("decode_unseal", "token decode + lookup + AES-GCM unseal"),
                        ("compare_1to1", "1:1 comparison"),
                        ("token_total", "token total (added to the decision)"),
                        ("gallery_1toN", "peer: gallery 1:N match, same probe"),
                        ("qr_read_code", "camera QR read, code in view (own thread)"),
                        ("qr_read_none", "camera QR read, no code (own thread)")):
        print(f"  {words:44s} p50 {costs[name]['p50_ms']!s:>6s} ms  "
              f"p95 {costs[name]['p95_ms']!s:>6s} ms")
    print(f"target: token total p95 <= 20 ms -> {costs['token_total']['p95_ms']} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="per loop and mode, one-person clip")
    parser.add_argument("--gate-seconds", type=float, default=20.0,
                        help="per loop and mode, gate scene")
    parser.add_argument("--scene", default="all", choices=["clip", "gate", "all"],
                        help="the one-person clip, the two-lane 1280x720 gate scene, or both")
    parser.add_argument("--camera-fps", type=float, default=30.0)
    parser.add_argument("--detector", default=None, choices=["ultraface_landmark68", "yunet"],
                        help="our detector (default: the settings' default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    from edge.vision.engine import FaceEngine

    models = model_dir()
    engine = FaceEngine.from_settings(VisionSettings(model_dir=models), detector=args.detector)
    yunet = find_yunet(models)
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, providers "
               f"{','.join(engine.providers)}, detector {engine.detector_name}")
    out: dict = {"bench": "pipeline", "machine": machine, "camera_fps": args.camera_fps,
                 "load_average": [round(x, 2) for x in os.getloadavg()]}
    if args.scene in ("clip", "all"):
        info, rows, costs = run_clip(args, engine, yunet)
        print_clip(args, machine, rows, costs)
        out.update({"clip_frames": info["frames"], "seconds": args.seconds, "rows": rows,
                    "token_costs": costs})
    if args.scene in ("gate", "all"):
        if args.scene == "gate":
            print(f"pipeline benchmark ({machine})")
        info, rows = run_gate(args, engine, yunet)
        out["gate_scene"] = {**info, "rows": rows}
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
