"""What bench/pipeline.py's scenes share: percentiles, model look-up, the looping clip camera,
the naive baseline's YuNet faces, an enrolled gallery, per-stage timers.

A helper module of `bench/pipeline.py` (run that; this file on its own does nothing).
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from edge.capture.reader import LatestFrameReader  # noqa: E402
from edge.capture.source import Capture, Frame, Pacer  # noqa: E402
from edge.vision.types import Face  # noqa: E402
from foundation.clock import SystemClock  # noqa: E402
from foundation.settings import default_model_dir  # noqa: E402

YUNET_CANDIDATES = ("face_detection_yunet_2023mar.onnx",)


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile of `values` (seconds) in ms, one decimal; None when empty."""
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def model_dir() -> Path:
    d = default_model_dir()
    if "CONSENTGATE_MODEL_DIR" not in os.environ and (ROOT / ".models").is_dir():
        d = ROOT / ".models"
    return d


def find_yunet(models: Path) -> Path:
    for folder in (models, ROOT.parent / "shared" / "models"):
        for name in YUNET_CANDIDATES:
            if (folder / name).is_file():
                return folder / name
    raise SystemExit("YuNet (face_detection_yunet_2023mar.onnx) not found in the model dir or "
                     "../shared/models: install it with `make models`")


class ClipSource:
    """The pre-rendered clip as a looping camera at `fps`; `read_at[i]` is when clip frame i
    was last captured (time.monotonic, the SystemClock's)."""

    name = "clip"

    def __init__(self, clip, fps: float) -> None:
        self.clip = clip
        self._pacer = Pacer(fps)
        self._i = 0
        self.read_at: dict[int, float] = {}

    def open(self) -> None:
        pass

    def read(self) -> Capture:
        self._pacer.wait()
        index = self._i % len(self.clip)
        visible, thermal = self.clip[index]
        self.read_at[index] = time.monotonic()
        self._i += 1
        return Capture(visible, thermal)

    def close(self) -> None:
        pass


def frames_of(clip, mode: str, camera_fps: float, seconds: float, source_box: list | None = None):
    """Yield (Frame) for `seconds`: straight from memory (`max`) or through the daemon's
    LatestFrameReader at `camera_fps` (`camera`); `source_box` receives the ClipSource."""
    clock = SystemClock()
    end = time.monotonic() + seconds
    if mode == "max":
        i = 0
        while time.monotonic() < end:
            visible, thermal = clip[i % len(clip)]
            yield Frame(i + 1, clock.monotonic(), visible, thermal)
            i += 1
        return
    source = ClipSource(clip, camera_fps)
    if source_box is not None:
        source_box.append(source)
    reader = LatestFrameReader(source, clock).start()
    try:
        last = 0
        while time.monotonic() < end:
            frame = reader.wait_frame(last, 0.5)
            if frame is not None:
                last = frame.seq
                yield frame
    finally:
        reader.stop()


def yunet_faces(detector, image) -> list[Face]:
    h, w = image.shape[:2]
    detector.setInputSize((w, h))
    _, rows = detector.detect(image)
    faces = []
    for r in rows if rows is not None else []:
        faces.append(Face((float(r[0]), float(r[1]), float(r[2]), float(r[3])), float(r[14]),
                          np.asarray(r[4:14], np.float32).reshape(5, 2)))
    return faces


def open_store(workdir: Path):
    from edge.consent.keys import write_key_file
    from edge.consent.store import ConsentStore

    write_key_file(workdir / "store.key")
    write_key_file(workdir / "ref.key")
    return ConsentStore.open(workdir / "store.db", workdir / "store.key", workdir / "ref.key",
                             SystemClock(), create=True)


def enrol_chips(engine, store, chips: list[np.ndarray], prefix: str = "BENCH") -> list[str]:
    """Each chip enrolled as one traveller (consent + template); returns the consent ids."""
    ids = []
    for i, chip in enumerate(chips):
        consent = store.grant_consent(f"{prefix}{i + 1}", "boarding", "bench",
                                      time.time() + 3600, "bench")
        faces = engine.detect(chip)
        if not faces:
            raise SystemExit(f"no face found in bench chip {i}: the scene's photos are unusable")
        probe = engine.embed(chip, faces[:1])
        store.enrol(consent.consent_id, [probe[0]], engine.embedder_name, "bench")
        probe.fill(0.0)
        ids.append(consent.consent_id)
    return ids


class StageTimes:
    """Seconds spent per named stage (calls and totals), for the per-stage cost table."""

    def __init__(self) -> None:
        self.calls: dict[str, list[float]] = defaultdict(list)

    def add(self, stage: str, seconds: float) -> None:
        self.calls[stage].append(seconds)

    def table(self, frames: int, loop: list[float]) -> dict[str, Any]:
        """stage -> {per_frame_ms (mean over all frames), calls, p50_ms, p95_ms (per call)};
        `other` is the loop time no stage accounts for (zones, lanes, bookkeeping)."""
        out: dict[str, Any] = {}
        total = 0.0
        for stage, values in self.calls.items():
            total += sum(values)
            out[stage] = {"per_frame_ms": round(sum(values) / max(1, frames) * 1000, 2),
                          "calls": len(values), "p50_ms": pct(values, 50),
                          "p95_ms": pct(values, 95)}
        out["other"] = {"per_frame_ms": round((sum(loop) - total) / max(1, frames) * 1000, 2),
                        "calls": frames, "p50_ms": None, "p95_ms": None}
        out["loop"] = {"per_frame_ms": round(sum(loop) / max(1, frames) * 1000, 2),
                       "calls": frames, "p50_ms": pct(loop, 50), "p95_ms": pct(loop, 95)}
        return out


class Timed:
    """A proxy that times the named methods of `inner` into `times` (everything else passes
    straight through); `last[stage]` is the latest result of the stages named in `keep` (never
    an embedding)."""

    def __init__(self, inner, times: StageTimes, methods: dict[str, str],
                 keep: tuple[str, ...] = ()) -> None:
        self._inner = inner
        self._keep = keep
        self._times = times
        self._methods = methods
        self.last: dict[str, Any] = {}

    def __getattr__(self, name: str):
        value = getattr(self._inner, name)
        stage = self._methods.get(name)
        if stage is None or not callable(value):
            return value
        times, last, keep = self._times, self.last, stage in self._keep

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                result = value(*args, **kwargs)
                if keep:
                    last[stage] = result
                return result
            finally:
                times.add(stage, time.perf_counter() - t0)
        return timed
