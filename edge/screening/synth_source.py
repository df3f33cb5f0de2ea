"""The synthetic camera: travellers walking up to the gate, rendered visible + thermal.

A `FrameSource` over screening's `SceneRenderer`: each `Walk` places one face photo per frame
along a path from the far side of the hall to the gate (growing as it nears), lets it stand at
the gate for `dwell_s`, then it goes through. Positions follow the injected clock, so the scene
plays in real time whatever the frame rate. Used by `python -m edge demo`, tests and
`bench/pipeline.py`; `auto_walk_s` keeps a scene busy for `python -m edge run`.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import numpy as np

from edge.capture.source import Capture, Pacer
from edge.screening.synth import Person, SceneRenderer
from foundation.clock import Clock


@dataclass(frozen=True)
class Walk:
    """One traveller's walk to the gate (times in Clock.monotonic seconds)."""

    walk_id: int
    photo: int
    canthus_c: float
    start: float
    approach_s: float = 2.0
    dwell_s: float = 3.0
    gate_x: float = 320.0
    gate_y: float = 215.0
    far_width: float = 70.0
    near_width: float = 170.0
    variant: int | None = None
    thermal_overlay: str | None = None  # a PAD instrument or glasses (screening.attack_scene)

    @property
    def end(self) -> float:
        return self.start + self.approach_s + self.dwell_s

    def placement(self, t: float) -> Person | None:
        u = t - self.start
        if u < 0 or t > self.end:
            return None
        p = min(1.0, u / self.approach_s) if self.approach_s > 0 else 1.0
        p = p * p * (3 - 2 * p)  # ease in and out
        x = self.gate_x - 180.0 * (1 - p)
        y = self.gate_y - 40.0 * (1 - p)
        width = self.far_width + (self.near_width - self.far_width) * p
        return Person(photo=self.photo, x=x, y=y, face_width_px=width,
                      canthus_c=self.canthus_c, variant=self.variant)


class SyntheticScene:
    """FrameSource: renders the walks active at each frame's time, paced to `fps`."""

    name = "synthetic"

    def __init__(self, renderer: SceneRenderer, clock: Clock, *, fps: float = 15.0,
                 auto_walk_s: float | None = None, auto_canthus_c: float = 36.6) -> None:
        self.renderer = renderer
        self._clock = clock
        self._fps = fps
        self._pacer = Pacer(fps)
        self._lock = threading.Lock()
        self._walks: list[Walk] = []
        self._ids = itertools.count(1)
        self._auto_walk_s = auto_walk_s
        self._auto_canthus_c = auto_canthus_c
        self._auto_photo = itertools.count()
        self._frames = 0

    @property
    def photos(self) -> int:
        return len(self.renderer.photos)

    # -- script ------------------------------------------------------------------------------
    def walk(self, photo: int = 0, canthus_c: float = 36.6, *, delay_s: float = 0.0,
             approach_s: float = 2.0, dwell_s: float = 3.0, variant: int | None = None,
             thermal_overlay: str | None = None) -> Walk:
        """Schedule a traveller walking up to the gate `delay_s` from now; `thermal_overlay`
        (e.g. "print_room", "phone_replay", "bona_fide_glasses") makes the walk a presentation
        attack of photo `photo` (or a traveller in glasses) in the thermal frame."""
        if not 0 <= photo < self.photos:
            raise ValueError(f"photo {photo} out of range (0..{self.photos - 1})")
        if thermal_overlay is not None:
            from edge.screening.attack_scene import OVERLAYS

            if thermal_overlay not in OVERLAYS:
                raise ValueError(f"thermal_overlay {thermal_overlay!r}: one of "
                                 f"{', '.join(OVERLAYS)}")
        w = Walk(next(self._ids), photo, canthus_c, self._clock.monotonic() + delay_s,
                 approach_s, dwell_s, variant=variant, thermal_overlay=thermal_overlay)
        with self._lock:
            self._walks.append(w)
        return w

    def active(self) -> list[Walk]:
        now = self._clock.monotonic()
        with self._lock:
            return [w for w in self._walks if w.end >= now]

    def finish(self, walk: Walk) -> None:
        """The traveller goes through the gate now (leaves the scene)."""
        import dataclasses

        now = self._clock.monotonic()
        with self._lock:
            self._walks = [dataclasses.replace(w, dwell_s=max(0.0, now - w.start - w.approach_s)
                                               - 1e-6)
                           if w.walk_id == walk.walk_id else w for w in self._walks]

    def done(self, walk: Walk) -> bool:
        return self._clock.monotonic() > walk.end

    # -- FrameSource -------------------------------------------------------------------------
    def open(self) -> None:
        self._pacer = Pacer(self._fps)

    def people_now(self) -> list[Person]:
        return [p for _, p in self._placed_now()]

    def _placed_now(self) -> list[tuple[Walk, Person]]:
        now = self._clock.monotonic()
        with self._lock:
            self._walks = [w for w in self._walks if w.end >= now]
            if self._auto_walk_s is not None and not self._walks:
                photo = next(self._auto_photo) % self.photos
                self._walks.append(Walk(next(self._ids), photo, self._auto_canthus_c,
                                        now + self._auto_walk_s))
            walks = list(self._walks)
        return [(w, p) for w, p in ((w, w.placement(now)) for w in walks) if p is not None]

    def render_now(self) -> tuple[np.ndarray, np.ndarray]:
        placed = self._placed_now()
        visible, thermal, truth = self.renderer.render([p for _, p in placed])
        if any(w.thermal_overlay for w, _ in placed):
            from edge.screening.attack_scene import paint_overlays

            thermal = paint_overlays(self.renderer, [(w.thermal_overlay, w.walk_id, p)
                                                     for w, p in placed], thermal, truth)
        return visible, thermal

    def read(self) -> Capture | None:
        self._pacer.wait()
        visible, thermal = self.render_now()
        self._frames += 1
        return Capture(visible, thermal)

    def close(self) -> None:
        pass
