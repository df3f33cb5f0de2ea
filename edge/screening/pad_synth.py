"""Synthetic presentation-attack scenes for thermal PAD: live travellers and attack instruments.

    photos = default_face_photos()
    calibration = synthetic_calibration((640, 480), (160, 120), seed=1)
    gen = PadSceneGenerator(calibration, photos, seed=7)
    scene = gen.make("print_warm")            # or gen.random_scene()
    scene.visible_bgr, scene.thermal_ck, scene.face, scene.species, scene.label

Live faces come from `edge.screening.synth.SceneRenderer` (its head, hair, nose, canthus,
clothing, blackbody, drift, noise, defects and parallax model), with fresh renderer parameters per
scene (ambient 16-28 C, noise 0.05-0.2 K, parallax up to 3.5 % of the frame). Species:

* bona_fide: a traveller, canthus 35.8-37.6 C.
* bona_fide_glasses: plus LWIR-opaque lenses (ambient + 2..8 C, capped below skin - 1.5 C) of
  varied size and shape, a bridge and temples; the lenses often cover the inner canthi.
* bona_fide_cold: came in from outdoors: canthus 33.6-35.4 C (skin ~30-33 C), extra-cold nose,
  cheeks and ears, sometimes a scarf over the neck.
* bona_fide_warm: fever-ish or after running: canthus 37.6-39.8 C, sometimes a flushed face.
* print_room / print_warm: a sheet (rectangle, tilted, or a face-shaped cut-out) at room
  temperature / warmed to 33-36 C, with ink emissivity contrast (a faint image of the printed
  face), warming gradients and hand-contact warm spots, sometimes bent (cooler edges), sometimes
  held by warm fingers; behind it the attacker's head (aligned, offset) or nothing.
* phone_replay / tablet_replay: a warm glass screen (25-37 C) with a SoC hot spot, a cooler
  low-emissivity bezel, the face filling 55-95 % (phone) / 25-60 % (tablet) of its width, often a
  holding hand, the attacker behind or not.
* paper_mask: a printed mask worn over a real face: paper 23-32 C (warmed by the face) with
  contact warm patches, eye holes (sometimes a mouth hole) through which the real eyes show.

Attack instruments are painted into a supersampled field of their own, blurred by the optics and
area-averaged to the thermal resolution, then composited over the rendered frame with the frame's
drift and fresh noise. Nothing here is used by the appliance at the gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.capture.thermal import CK_AT_0C
from edge.screening.calibration import Calibration
from edge.screening.synth import (
    CHIP_EYES,
    CHIP_IPD,
    SUPERSAMPLE,
    Person,
    SceneRenderer,
    SceneTruth,
)
from edge.vision.types import Face

BONA_FIDE = ("bona_fide", "bona_fide_glasses", "bona_fide_cold", "bona_fide_warm")
ATTACKS = ("print_room", "print_warm", "phone_replay", "tablet_replay", "paper_mask")
SPECIES = BONA_FIDE + ATTACKS


def is_bona_fide(species: str) -> bool:
    return species.startswith("bona_fide")


@dataclass(frozen=True)
class PadScene:
    """One rendered frame with one presented face."""

    visible_bgr: np.ndarray = field(repr=False)
    thermal_ck: np.ndarray = field(repr=False)
    calibration: Calibration = field(repr=False)
    face: Face  # the true face box and landmarks of the presented face (visible pixels)
    species: str
    thermal_eyes: np.ndarray = field(repr=False)  # true eye positions in thermal pixels

    @property
    def label(self) -> str:
        return "bona_fide" if is_bona_fide(self.species) else "attack"


class _FaceFrame:
    """Face coordinates (eye-gap units, eye midpoint origin, fa across, fb down) over the
    supersampled thermal field."""

    def __init__(self, thermal_size: tuple[int, int], eyes_th: np.ndarray) -> None:
        s = SUPERSAMPLE
        tw, th = thermal_size
        eyes = (np.asarray(eyes_th, dtype=np.float64) + 0.5) * s - 0.5
        self.span = float(np.linalg.norm(eyes[1] - eyes[0]))
        u = (eyes[1] - eyes[0]) / max(self.span, 1e-6)
        v = np.array([-u[1], u[0]])
        mid = eyes.mean(axis=0)
        ys, xs = np.mgrid[0:th * s, 0:tw * s].astype(np.float32)
        dx, dy = xs - np.float32(mid[0]), ys - np.float32(mid[1])
        self.fa = (dx * np.float32(u[0]) + dy * np.float32(u[1])) / np.float32(self.span)
        self.fb = (dx * np.float32(v[0]) + dy * np.float32(v[1])) / np.float32(self.span)
        self.shape = self.fa.shape

    def rotated(self, angle_rad: float, ca: float = 0.0, cb: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(angle_rad), math.sin(angle_rad)
        a, b = self.fa - ca, self.fb - cb
        return (a * c + b * s), (-a * s + b * c)

    def blob(self, ca: float, cb: float, sa: float, sb: float) -> np.ndarray:
        return np.exp(-(((self.fa - ca) / sa) ** 2 + ((self.fb - cb) / sb) ** 2) / 2)


def _composite(frame_c: np.ndarray, mask_hr: np.ndarray, temp_hr: np.ndarray, drift_c: float,
               noise_c: float, rng: np.random.Generator) -> np.ndarray:
    """Optics blur + area averaging of (mask, temperature), composited over `frame_c`."""
    th, tw = frame_c.shape
    sig = 0.5 * SUPERSAMPLE
    m = mask_hr.astype(np.float32)
    num = cv2.resize(cv2.GaussianBlur(temp_hr.astype(np.float32) * m, (0, 0), sig), (tw, th),
                     interpolation=cv2.INTER_AREA)
    den = cv2.resize(cv2.GaussianBlur(m, (0, 0), sig), (tw, th), interpolation=cv2.INTER_AREA)
    obj = num / np.maximum(den, 1e-6)
    noise = rng.normal(0.0, noise_c, frame_c.shape).astype(np.float32)
    return frame_c * (1 - den) + (obj + drift_c + noise) * den


def _ink(fr: _FaceFrame, photo: np.ndarray, ink_scale: float = 1.0) -> np.ndarray:
    """Darkness (0 light .. 1 dark) of the printed face photo over the field: the chip placed with
    its eyes on the face's eyes (hair, brows, eyes and mouth are dark)."""
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    centre = CHIP_EYES.mean(axis=0)
    px = fr.fa * (CHIP_IPD * ink_scale) + np.float32(centre[0])
    py = fr.fb * (CHIP_IPD * ink_scale) + np.float32(centre[1])
    return 1.0 - cv2.remap(grey, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class PadSceneGenerator:
    """Renders PAD scenes of any species on one calibration (fresh renderer per scene)."""

    def __init__(self, calibration: Calibration, photos: list[np.ndarray], seed: int = 0
                 ) -> None:
        self.calibration = calibration
        self.photos = photos
        self.seed = seed
        self._rng = np.random.default_rng([seed, 15])

    def random_scene(self) -> PadScene:
        return self.make(SPECIES[int(self._rng.integers(len(SPECIES)))])

    # ---- placement ---------------------------------------------------------------------------
    def _renderer(self, ambient_c: float) -> SceneRenderer:
        rng = self._rng
        return SceneRenderer(self.calibration, self.photos, int(rng.integers(1 << 30)),
                             noise_c=float(rng.uniform(0.05, 0.2)),
                             max_parallax=float(rng.uniform(0.0, 0.035)), ambient_c=ambient_c)

    def _person(self, canthus_c: float) -> Person:
        rng = self._rng
        vw, vh = self.calibration.visible_size
        return Person(photo=int(rng.integers(len(self.photos))),
                      x=float(rng.uniform(0.3, 0.7) * vw), y=float(rng.uniform(0.36, 0.55) * vh),
                      face_width_px=float(rng.uniform(0.13, 0.45) * vw), canthus_c=canthus_c,
                      variant=int(rng.integers(1 << 30)))

    def make(self, species: str) -> PadScene:
        """One scene of `species` (see SPECIES)."""
        if species not in SPECIES:
            raise ValueError(f"unknown species {species!r}; choose one of {', '.join(SPECIES)}")
        rng = self._rng
        cold = species == "bona_fide_cold"
        ambient = float(rng.uniform(16.0, 24.0) if cold else rng.uniform(18.0, 28.0))
        canthus = {"bona_fide_cold": (33.6, 35.4), "bona_fide_warm": (37.6, 39.8)}.get(
            species, (35.8, 37.6))
        renderer = self._renderer(ambient)
        person = self._person(round(float(rng.uniform(*canthus)), 2))
        visible, thermal_ck, truth = renderer.render([person])
        pt = truth.people[0]
        frame_c = (thermal_ck.astype(np.float32) - CK_AT_0C) / 100.0
        noise = renderer.noise_c
        if species in ATTACKS and species != "paper_mask":
            frame_c = self._behind(renderer, person, frame_c)
        fr = _FaceFrame(self.calibration.thermal_size, pt.thermal_eyes)
        paint = getattr(self, "_" + species)
        frame_c = paint(fr, frame_c, truth, ambient, noise, person)
        ck = np.clip(np.rint(frame_c * 100.0 + CK_AT_0C), 0, 65535).astype(np.uint16)
        return PadScene(visible, ck, self.calibration, pt.face(), species, pt.thermal_eyes)

    def _behind(self, renderer: SceneRenderer, person: Person, frame_c: np.ndarray
                ) -> np.ndarray:
        """What is behind an instrument: the attacker's head aligned (as rendered), offset, or
        nobody (a print on a stand, a screen at arm's length)."""
        rng = self._rng
        r = rng.random()
        if r < 0.45:
            return frame_c
        if r < 0.75:
            gap = person.face_width_px * 0.42
            other = Person(photo=person.photo, x=person.x + float(rng.uniform(-0.6, 0.6)) * gap,
                           y=person.y + float(rng.uniform(-0.4, 0.5)) * gap,
                           face_width_px=person.face_width_px * float(rng.uniform(0.8, 1.15)),
                           canthus_c=float(rng.uniform(35.5, 37.5)), variant=person.variant)
            _, ck, _ = renderer.render([other])
        else:
            _, ck, _ = renderer.render([])
        return (ck.astype(np.float32) - CK_AT_0C) / 100.0

    # ---- bona fide -----------------------------------------------------------------------------
    def _bona_fide(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                   ambient: float, noise: float, person: Person) -> np.ndarray:
        return frame_c

    def _bona_fide_warm(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                        ambient: float, noise: float, person: Person) -> np.ndarray:
        rng = self._rng
        if rng.random() < 0.5:  # flushed: cheeks and forehead warmer (the nose stays cooler)
            head = (fr.fa / 1.1) ** 2 + ((fr.fb - 0.35) / 1.5) ** 2 < 1.0
            flush = float(rng.uniform(0.2, 0.8)) * (fr.blob(-0.6, 0.7, 0.3, 0.3)
                                                     + fr.blob(0.6, 0.7, 0.3, 0.3)
                                                     + fr.blob(0.0, -0.6, 0.5, 0.25)) * head
            return frame_c + cv2.resize(cv2.GaussianBlur(flush.astype(np.float32), (0, 0),
                                                         0.5 * SUPERSAMPLE),
                                        frame_c.shape[::-1], interpolation=cv2.INTER_AREA)
        return frame_c

    def _bona_fide_cold(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                        ambient: float, noise: float, person: Person) -> np.ndarray:
        rng = self._rng
        head = (fr.fa / 1.15) ** 2 + ((fr.fb - 0.3) / 1.65) ** 2 < 1.0
        cool = (float(rng.uniform(0.5, 2.5)) * fr.blob(0.0, 0.8, 0.22, 0.28)
                + float(rng.uniform(0.0, 1.5)) * (fr.blob(-0.75, 0.75, 0.3, 0.35)
                                                  + fr.blob(0.75, 0.75, 0.3, 0.35))
                + float(rng.uniform(0.0, 1.0)) * np.clip((np.abs(fr.fa) - 0.7) / 0.4, 0, 1))
        cool_th = cv2.resize(cv2.GaussianBlur((cool * head).astype(np.float32), (0, 0),
                                              0.5 * SUPERSAMPLE),
                             frame_c.shape[::-1], interpolation=cv2.INTER_AREA)
        out = frame_c - cool_th
        if rng.random() < 0.3:  # a scarf over the neck and chin
            top = float(rng.uniform(1.45, 1.8))
            mask = (fr.fb > top) & (np.abs(fr.fa) < 1.4) & (fr.fb < top + 1.2)
            temp = np.full(fr.shape, ambient + float(rng.uniform(2.0, 6.0)), np.float32)
            out = _composite(out, mask, temp, truth.drift_c, noise, rng)
        return out

    def _bona_fide_glasses(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                           ambient: float, noise: float, person: Person) -> np.ndarray:
        rng = self._rng
        skin = person.canthus_c - 1.3
        centre = float(rng.uniform(0.46, 0.6))
        half_a, half_b = float(rng.uniform(0.3, 0.46)), float(rng.uniform(0.2, 0.34))
        power = float(rng.uniform(2.0, 5.0))  # ellipse .. rounded rectangle
        dy = float(rng.uniform(-0.06, 0.08))
        lens_c = min(ambient + float(rng.uniform(2.0, 8.0)), skin - 1.5)
        frame_temp = min(lens_c + float(rng.uniform(0.0, 3.0)), skin - 0.5)
        mask = np.zeros(fr.shape, bool)
        temp = np.full(fr.shape, frame_temp, np.float32)
        for k in (-1.0, 1.0):
            d = (np.abs((fr.fa - k * centre) / half_a) ** power
                 + np.abs((fr.fb - dy) / half_b) ** power)
            lens = d < 1.0
            rim = (d < (1.0 + 0.12) ** power) & ~lens
            temp = np.where(lens, lens_c + float(rng.uniform(-0.4, 0.4)) * (fr.fb - dy) / half_b,
                            temp)
            mask |= lens | rim
            temple = ((np.abs(fr.fb - dy + 0.05) < 0.03) & (k * fr.fa > centre + half_a)
                      & (k * fr.fa < 1.25))
            mask |= temple
        inner = centre - half_a
        mask |= (np.abs(fr.fb - dy + 0.08) < 0.035) & (np.abs(fr.fa) <= inner + 0.02)
        return _composite(frame_c, mask, temp, truth.drift_c, noise, rng)

    # ---- prints --------------------------------------------------------------------------------
    def _sheet(self, fr: _FaceFrame, paper_c: float, ambient: float, person: Person,
               cutout_ok: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """A printed sheet holding the face: (mask, apparent temperature) over the field."""
        rng = self._rng
        ink_scale = float(rng.uniform(0.9, 1.1))  # registration of the print vs the box
        if cutout_ok and rng.random() < 0.25:  # a face-shaped cut-out
            ra, rb = float(rng.uniform(0.95, 1.35)), float(rng.uniform(1.4, 2.0))
            mask = (fr.fa / ra) ** 2 + ((fr.fb - float(rng.uniform(0.2, 0.45))) / rb) ** 2 < 1
            half = ra
        else:
            half = float(rng.uniform(0.9, 2.8))
            top, bottom = float(rng.uniform(1.0, 2.8)), float(rng.uniform(1.4, 3.6))
            a, b = fr.rotated(math.radians(float(rng.uniform(-10, 10))))
            mask = (np.abs(a) < half) & (b > -top) & (b < bottom)
        temp = np.full(fr.shape, paper_c, np.float32)
        grad = rng.uniform(-0.5, 0.5, 2).astype(np.float32)  # C per eye gap
        temp += grad[0] * fr.fa + grad[1] * fr.fb
        d_eps = float(rng.uniform(-0.02, 0.06))
        ink = _ink(fr, self.photos[person.photo], ink_scale)
        temp -= d_eps * ink * (paper_c - ambient)
        if rng.random() < 0.4:  # bent sheet: grazing angles at the sides read cooler
            temp -= float(rng.uniform(0.1, 0.6)) * np.clip(fr.fa / half, -1, 1) ** 2
        return mask, temp

    def _fingers(self, fr: _FaceFrame, mask: np.ndarray, temp: np.ndarray, edge_b: float,
                 side: float) -> None:
        rng = self._rng
        finger_c = float(rng.uniform(30.0, 34.5))
        for i in range(int(rng.integers(1, 5))):
            ca = side + float(rng.uniform(-0.15, 0.15)) if side else float(rng.uniform(-1, 1))
            cb = edge_b + 0.25 * i if side else edge_b
            f = ((fr.fa - ca) / 0.12) ** 2 + ((fr.fb - cb) / 0.3) ** 2 < 1
            mask |= f
            temp[f] = finger_c

    def _print(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth, paper_c: float,
               ambient: float, noise: float, person: Person, warm: bool) -> np.ndarray:
        rng = self._rng
        mask, temp = self._sheet(fr, paper_c, ambient, person)
        if warm and rng.random() < 0.6:  # held against the body / hands: warm patches
            for _ in range(int(rng.integers(1, 3))):
                temp += float(rng.uniform(0.3, 1.5)) * fr.blob(
                    float(rng.uniform(-1.2, 1.2)), float(rng.uniform(-1, 2.5)),
                    float(rng.uniform(0.4, 1.2)), float(rng.uniform(0.4, 1.2)))
        if rng.random() < 0.4:
            self._fingers(fr, mask, temp, float(rng.uniform(1.4, 2.6)),
                          float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.9, 1.6)))
        return _composite(frame_c, mask, temp, truth.drift_c, noise, rng)

    def _print_room(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                    ambient: float, noise: float, person: Person) -> np.ndarray:
        paper = ambient + float(self._rng.uniform(-2.0, 2.5))
        return self._print(fr, frame_c, truth, paper, ambient, noise, person, warm=False)

    def _print_warm(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                    ambient: float, noise: float, person: Person) -> np.ndarray:
        paper = float(self._rng.uniform(33.0, 36.0))
        return self._print(fr, frame_c, truth, paper, ambient, noise, person, warm=True)

    # ---- screens -------------------------------------------------------------------------------
    def _screen(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth, ambient: float,
                noise: float, fill: tuple[float, float], aspects: tuple[float, float],
                temp_range: tuple[float, float], hot_max: float) -> np.ndarray:
        rng = self._rng
        # the displayed face (~2.3 x 3.3 eye gaps) fills `fill` of the screen's width (portrait)
        # or height (landscape), and lies inside the screen
        aspect = aspects[0] if rng.random() < 0.75 else aspects[1]
        if aspect >= 1.0:
            half_w = 1.15 / float(rng.uniform(*fill))
            half_h = max(half_w * aspect, 1.75)
        else:
            half_h = 1.65 / float(rng.uniform(*fill))
            half_w = max(half_h / aspect, 1.25)
        ca = float(rng.uniform(-1, 1)) * max(0.0, half_w - 1.2)
        cb = 0.3 + float(rng.uniform(-1, 1)) * max(0.0, half_h - 1.7)
        a, b = fr.rotated(math.radians(float(rng.uniform(-8, 8))), ca, cb)
        bezel = float(rng.uniform(0.04, 0.12)) * half_w
        body = (np.abs(a) < half_w + bezel) & (np.abs(b) < half_h + bezel)
        glass = (np.abs(a) < half_w) & (np.abs(b) < half_h)
        screen_c = float(rng.uniform(*temp_range))
        temp = np.full(fr.shape, screen_c, np.float32)
        hot = float(rng.uniform(0.0, hot_max))
        temp += hot * np.exp(-(((a - float(rng.uniform(-0.5, 0.5)) * half_w) / (0.5 * half_w)) ** 2
                               + ((b + float(rng.uniform(-0.2, 0.8)) * half_h)
                                  / (0.5 * half_h)) ** 2) / 2)
        grad = rng.uniform(-0.3, 0.3, 2).astype(np.float32)
        temp += grad[0] * fr.fa + grad[1] * fr.fb
        temp = np.where(glass, temp, screen_c - float(rng.uniform(0.0, 4.0)))  # bezel
        mask = body.copy()
        if rng.random() < 0.7:  # a holding hand
            self._fingers(fr, mask, temp, cb + half_h + bezel, 0.0)
            palm = ((fr.fa - ca) / (0.6 * half_w)) ** 2 + ((fr.fb - cb - half_h - 0.4) / 0.5) ** 2
            palm_mask = (palm < 1) & ~body
            mask |= palm_mask
            temp[palm_mask] = float(rng.uniform(30.0, 34.0))
        return _composite(frame_c, mask, temp, truth.drift_c, noise, rng)

    def _phone_replay(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                      ambient: float, noise: float, person: Person) -> np.ndarray:
        return self._screen(fr, frame_c, truth, ambient, noise, (0.55, 0.95), (1.9, 0.52),
                            (27.0, 37.0), 3.0)

    def _tablet_replay(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                       ambient: float, noise: float, person: Person) -> np.ndarray:
        return self._screen(fr, frame_c, truth, ambient, noise, (0.25, 0.6), (1.33, 0.75),
                            (25.0, 35.0), 2.0)

    # ---- mask ----------------------------------------------------------------------------------
    def _paper_mask(self, fr: _FaceFrame, frame_c: np.ndarray, truth: SceneTruth,
                    ambient: float, noise: float, person: Person) -> np.ndarray:
        rng = self._rng
        paper_c = float(rng.uniform(23.0, 32.0))
        mask, temp = self._sheet(fr, paper_c, ambient, person, cutout_ok=False)
        if rng.random() < 0.5:  # or a face-shaped mask
            ra, rb = float(rng.uniform(1.0, 1.4)), float(rng.uniform(1.5, 2.0))
            mask = (fr.fa / ra) ** 2 + ((fr.fb - float(rng.uniform(0.2, 0.4))) / rb) ** 2 < 1
        for _ in range(int(rng.integers(0, 4))):  # contact with the skin: warm patches
            temp += float(rng.uniform(0.3, 2.0)) * fr.blob(
                float(rng.uniform(-0.8, 0.8)), float(rng.uniform(-0.8, 1.4)),
                float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.15, 0.5)))
        ha, hb = float(rng.uniform(0.2, 0.36)), float(rng.uniform(0.1, 0.2))
        jit = rng.uniform(-0.05, 0.05, 4)
        for k, (ja, jb) in ((-1.0, jit[:2]), (1.0, jit[2:])):
            hole = ((fr.fa - k * 0.5 - ja) / ha) ** 2 + ((fr.fb - jb) / hb) ** 2 < 1
            mask &= ~hole
        if rng.random() < 0.3:
            mask &= ~(((fr.fa / 0.3) ** 2 + ((fr.fb - 1.25) / 0.12) ** 2) < 1)
        return _composite(frame_c, mask, temp, truth.drift_c, noise, rng)
