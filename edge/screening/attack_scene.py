"""Presentation attacks (and eyeglasses) in the synthetic camera: pad_synth's physics per frame.

The synthetic scene (edge.screening.synth_source) renders each walk-up as a live traveller. A
walk with a `thermal_overlay` also carries what pad_synth models in the thermal channel, painted
over that traveller's head in every frame: a print (`print_room`, `print_warm`), a screen
(`phone_replay`, `tablet_replay`), a `paper_mask`, or `bona_fide_glasses` (a live traveller in
LWIR-opaque glasses). The visible frame keeps showing the walk's face photo: for an attack that
is the enrolled traveller on the print or the screen, held up by someone whose own head is
behind it in the thermal frame.

The overlay's parameters (sheet size and tilt, paper or glass temperature, fingers...) are drawn
from a generator seeded by the walk, so one walk holds one instrument however many frames are
rendered. Nothing here runs at a real gate.
"""

from __future__ import annotations

import numpy as np

from edge.capture.thermal import CK_AT_0C
from edge.screening.pad_synth import SPECIES, PadSceneGenerator, _FaceFrame
from edge.screening.synth import Person, SceneRenderer, SceneTruth

OVERLAYS = tuple(s for s in SPECIES if s != "bona_fide")  # bona_fide: nothing to paint


class OverlayPainter(PadSceneGenerator):
    """pad_synth's instrument painters over frames rendered by `renderer`."""

    def __init__(self, renderer: SceneRenderer, seed: int) -> None:
        super().__init__(renderer.calibration, renderer.photos, seed)
        self.renderer = renderer

    def paint(self, species: str, thermal_ck: np.ndarray, truth: SceneTruth, index: int,
              person: Person) -> np.ndarray:
        """`thermal_ck` with `species` painted over person `index` of `truth` (a new frame)."""
        if species not in OVERLAYS:
            raise ValueError(f"unknown thermal overlay {species!r}; choose one of "
                             f"{', '.join(OVERLAYS)}")
        fr = _FaceFrame(self.calibration.thermal_size, truth.people[index].thermal_eyes)
        frame_c = (thermal_ck.astype(np.float32) - CK_AT_0C) / 100.0
        painter = getattr(self, "_" + species)
        frame_c = painter(fr, frame_c, truth, self.renderer.ambient_c, self.renderer.noise_c,
                          person)
        return np.clip(np.rint(frame_c * 100.0 + CK_AT_0C), 0, 65535).astype(np.uint16)


def paint_overlays(renderer: SceneRenderer, placed: list[tuple[str | None, int, Person]],
                   thermal_ck: np.ndarray, truth: SceneTruth) -> np.ndarray:
    """Paint each placement's overlay (species, walk seed, person: in the order the persons
    were given to `renderer.render`) over the frame it rendered."""
    # render() draws (and lists in `truth`) far to near: the same stable order as here
    order = sorted(range(len(placed)), key=lambda i: placed[i][2].face_width_px)
    for truth_index, i in enumerate(order):
        species, seed, person = placed[i]
        if species is not None:
            thermal_ck = OverlayPainter(renderer, seed).paint(species, thermal_ck, truth,
                                                              truth_index, person)
    return thermal_ck
