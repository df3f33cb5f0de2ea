"""Synthetic visible + radiometric thermal scenes with ground truth (demo, tests, evaluation).

How to use it (the daemon's synthetic camera animates travellers this way):

    photos = default_face_photos()                     # or load_face_photos(folder, detect)
    calibration = synthetic_calibration((640, 480), (160, 120), seed=1)
    renderer = SceneRenderer(calibration, photos, seed=1)
    for t in range(90):                                # a traveller walks up to the gate
        person = Person(photo=0, x=320, y=240, face_width_px=120 + 2 * t, canthus_c=36.8,
                        variant=7)                     # same variant = same person's anatomy
        visible_bgr, thermal_ck, truth = renderer.render([person])

`face_photos` are *face chips* (edge.screening.face_chips): BGR images of CHIP_SIZE with the
eyes at CHIP_EYES (make them with `face_chip(image, eyes)`). A `Person` places a chip with its
eye midpoint at (x, y) in the visible frame, scaled so the face is `face_width_px` wide (eye
gap = EYE_SPAN_RATIO of it), and gives its hotter inner canthus `canthus_c`. Each `render` call
is one frame: placements may change every frame; the background, the calibration and the
sensor's defect map stay fixed; drift, parallax, noise and transient hot pixels are drawn per
frame from the seeded generator.

Thermal model (rendered at SUPERSAMPLE x the thermal resolution, then optics blur and pixel
area averaging): ambient background with a gradient and panels; clothing, neck, head ellipse of
skin with a cooler nose and hair; cooler corneas; a warm periorbital area and, at each inner
canthus (a person-specific 20-30 % of the eye gap inwards, slightly below the eye line), a
small disc at the canthus temperature (the other side up to 0.3 C cooler); a blackbody patch at
the calibration's set point. Then per frame: uniform drift (default +-1 K), Gaussian noise
(default sigma 0.1 K), fixed defective hot pixels (0.1 %) plus, in 30 % of faces, a transient
hot pixel next to a canthus, and random parallax (the true visible-to-thermal map is the
calibrated homography shifted by up to 2 % of the frame). The truth is in `SceneTruth`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.capture.thermal import CK_AT_0C
from edge.screening.calibration import Calibration
from edge.screening.face_chips import (
    CHIP_EYES,
    CHIP_IPD,
    CHIP_LOWER,
    CHIP_SIZE,
    SynthError,
    default_face_photos,
    face_chip,
    load_face_photos,
)
from edge.vision.types import Face

# the face chips' names stay importable from here (the scene's users import them with it)
__all__ = ["CHIP_EYES", "CHIP_SIZE", "EYE_SPAN_RATIO", "Person", "PersonTruth", "SceneRenderer",
           "SceneTruth", "SynthError", "default_face_photos", "face_chip", "load_face_photos",
           "synthetic_calibration"]

EYE_SPAN_RATIO = 0.42  # eye gap / face width
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Person:
    """One traveller in one frame (visible-frame pixels)."""

    photo: int  # index into the renderer's face photos
    x: float  # eye midpoint
    y: float
    face_width_px: float
    canthus_c: float  # the hotter inner canthus, true temperature
    variant: int | None = None  # anatomy seed; default: the photo index


@dataclass(frozen=True)
class PersonTruth:
    canthus_c: float
    box: tuple[float, float, float, float]  # visible x, y, w, h (approximate face box)
    landmarks: np.ndarray = field(repr=False)  # (5, 2) visible, eyes exact, the rest approximate
    thermal_eyes: np.ndarray = field(repr=False)  # (2, 2) true eye positions in thermal pixels

    def face(self) -> Face:
        """The truth as a `Face` (what a perfect detector would give)."""
        return Face(box=self.box, score=1.0, landmarks=self.landmarks.astype(np.float32))


@dataclass(frozen=True)
class SceneTruth:
    people: tuple[PersonTruth, ...]
    drift_c: float
    noise_c: float


def synthetic_calibration(visible_size: tuple[int, int], thermal_size: tuple[int, int],
                          seed: int = 0, blackbody_c: float = 35.0) -> Calibration:
    """A plausible calibration: a thermal camera beside the visible one with a slightly narrower
    field of view, a small roll and offset, and a blackbody in the top right corner."""
    rng = np.random.default_rng([seed, 1])
    vw, vh = visible_size
    tw, th = thermal_size
    scale = tw / vw * float(rng.uniform(1.04, 1.12))
    theta = math.radians(float(rng.uniform(-1.5, 1.5)))
    off = np.array([rng.uniform(-0.02, 0.02) * tw, rng.uniform(-0.02, 0.02) * th])
    c, s = math.cos(theta) * scale, math.sin(theta) * scale
    to_origin = np.array([[1, 0, -vw / 2], [0, 1, -vh / 2], [0, 0, 1]], dtype=np.float64)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)
    to_thermal = np.array([[1, 0, tw / 2 + off[0]], [0, 1, th / 2 + off[1]], [0, 0, 1]])
    h = to_thermal @ rot @ to_origin
    bw, bh = max(6, tw // 16), max(5, th // 18)
    roi = (tw - bw - max(3, tw // 40), max(3, th // 40), bw, bh)
    return Calibration(visible_size=(vw, vh), thermal_size=(tw, th), homography=h,
                       blackbody_roi=roi, blackbody_c=blackbody_c)


def _chip_mask() -> np.ndarray:
    w, h = CHIP_SIZE
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, int(h * 0.47)), (int(w * 0.42), int(h * 0.45)), 0, 0, 360, 1.0,
                -1)
    return cv2.GaussianBlur(mask, (0, 0), 6)


@dataclass(frozen=True)
class _Anatomy:
    inward: float
    down: float
    other_cooler: float
    right_is_hotter: bool
    radius: float
    skin_below: float
    peri_below: float
    nose_cool: float
    hair_above_ambient: float
    cloth_above_ambient: float


def _anatomy(seed: int, variant: int) -> _Anatomy:
    rng = np.random.default_rng([seed, 2, variant])
    return _Anatomy(inward=float(rng.uniform(0.20, 0.30)), down=float(rng.uniform(-0.04, 0.06)),
                    other_cooler=float(rng.uniform(0.0, 0.3)),
                    right_is_hotter=bool(rng.integers(2)),
                    radius=float(rng.uniform(0.055, 0.08)),
                    skin_below=float(rng.uniform(1.3, 2.5)),
                    peri_below=float(rng.uniform(0.5, 1.0)),
                    nose_cool=float(rng.uniform(0.8, 2.5)),
                    hair_above_ambient=float(rng.uniform(3.0, 7.0)),
                    cloth_above_ambient=float(rng.uniform(4.0, 8.0)))


class SceneRenderer:
    """Renders (visible BGR, thermal centikelvin, truth) for a list of `Person` placements."""

    def __init__(self, calibration: Calibration, face_photos: list[np.ndarray], seed: int = 0,
                 *, noise_c: float = 0.1, max_drift_c: float = 1.0,
                 hot_pixel_rate: float = 0.001, transient_hot_share: float = 0.3,
                 max_parallax: float = 0.02, ambient_c: float = 23.0) -> None:
        if not face_photos:
            raise SynthError("SceneRenderer needs at least one face photo")
        for chip in face_photos:
            if chip.shape != (CHIP_SIZE[1], CHIP_SIZE[0], 3) or chip.dtype != np.uint8:
                raise SynthError(f"face photos must be {CHIP_SIZE[0]}x{CHIP_SIZE[1]} BGR chips "
                                 "made by face_chip()")
        self.calibration = calibration
        self.photos = face_photos
        self.seed = seed
        self.noise_c = noise_c
        self.max_drift_c = max_drift_c
        self.max_parallax = max_parallax
        self.transient_hot_share = transient_hot_share
        self.ambient_c = ambient_c
        self._rng = np.random.default_rng([seed, 3])
        self._mask = _chip_mask()
        fixed = np.random.default_rng([seed, 4])
        tw, th = calibration.thermal_size
        n_defects = round(hot_pixel_rate * tw * th)
        self._defects = (fixed.integers(0, th, n_defects), fixed.integers(0, tw, n_defects),
                         fixed.uniform(2.0, 15.0, n_defects))
        self._visible_bg = self._make_visible_background(fixed)
        self._thermal_bg = self._make_thermal_background(fixed)

    # ---- backgrounds (fixed per renderer) ------------------------------------------------------
    def _make_visible_background(self, rng: np.random.Generator) -> np.ndarray:
        vw, vh = self.calibration.visible_size
        ramp = np.linspace(0.0, 1.0, vh, dtype=np.float32)[:, None, None]
        top, bottom = np.array([190, 180, 170], np.float32), np.array([120, 125, 135], np.float32)
        bg = np.broadcast_to(top + (bottom - top) * ramp, (vh, vw, 3)).copy()
        for _ in range(6):
            x, y = int(rng.integers(0, vw)), int(rng.integers(0, vh))
            w, h = int(rng.integers(vw // 12, vw // 4)), int(rng.integers(vh // 12, vh // 3))
            colour = [float(v) for v in rng.uniform(60, 220, 3)]
            cv2.rectangle(bg, (x, y), (x + w, y + h), colour, -1)
        bg += rng.normal(0, 3, bg.shape).astype(np.float32)
        return np.clip(bg, 0, 255).astype(np.uint8)

    def _make_thermal_background(self, rng: np.random.Generator) -> np.ndarray:
        tw, th = self.calibration.thermal_size
        hw, hh = tw * SUPERSAMPLE, th * SUPERSAMPLE
        ramp = np.linspace(-0.8, 0.8, hh, dtype=np.float32)[:, None]
        field_c = np.broadcast_to(self.ambient_c + ramp, (hh, hw)).copy()
        for _ in range(5):
            x, y = int(rng.integers(0, hw)), int(rng.integers(0, hh))
            w, h = int(rng.integers(hw // 12, hw // 4)), int(rng.integers(hh // 12, hh // 3))
            cv2.rectangle(field_c, (x, y), (x + w, y + h),
                          float(self.ambient_c + rng.uniform(-4.0, 6.0)), -1)
        return field_c

    # ---- one frame -----------------------------------------------------------------------------
    def render(self, people: Sequence[Person]) -> tuple[np.ndarray, np.ndarray, SceneTruth]:
        """One frame: (visible BGR uint8, thermal uint16 centikelvin, truth). People are drawn
        far to near (smaller faces first)."""
        order = sorted(people, key=lambda p: p.face_width_px)
        visible = self._visible_bg.astype(np.float32)
        thermal_hr = self._thermal_bg.copy()
        truths = []
        transient = []
        for person in order:
            if not 0 <= person.photo < len(self.photos):
                raise SynthError(f"photo index {person.photo} out of range "
                                 f"(0..{len(self.photos) - 1})")
            if not 8 <= person.face_width_px <= 4 * max(self.calibration.visible_size):
                raise SynthError(f"face width {person.face_width_px} px is implausible")
            eyes_vis = self._paste_visible(visible, person)
            parallax = np.array([self._rng.uniform(-1, 1) * self.max_parallax,
                                 self._rng.uniform(-0.5, 0.5) * self.max_parallax])
            parallax *= np.array(self.calibration.thermal_size, dtype=np.float64)
            eyes_th = self.calibration.to_thermal(eyes_vis) + parallax
            anatomy = _anatomy(self.seed, person.photo if person.variant is None
                               else person.variant)
            spot = self._paint_person(thermal_hr, eyes_th, person.canthus_c, anatomy)
            if self._rng.random() < self.transient_hot_share:
                transient.append(spot)
            fw = person.face_width_px
            mid = eyes_vis.mean(axis=0)
            scale = fw * EYE_SPAN_RATIO / CHIP_IPD
            lower = (CHIP_LOWER - CHIP_EYES.mean(axis=0)) * scale + mid
            truths.append(PersonTruth(
                canthus_c=person.canthus_c,
                box=(float(mid[0] - fw / 2), float(mid[1] - 0.5 * fw), float(fw),
                     float(1.2 * fw)),
                landmarks=np.vstack([eyes_vis, lower]).astype(np.float32),
                thermal_eyes=eyes_th))
        self._paint_blackbody(thermal_hr)
        visible += self._rng.normal(0, 2.0, visible.shape).astype(np.float32)
        visible_bgr = np.clip(visible, 0, 255).astype(np.uint8)
        thermal_c, drift = self._sense(thermal_hr, transient)
        ck = np.clip(np.rint(thermal_c * 100.0 + CK_AT_0C), 0, 65535).astype(np.uint16)
        return visible_bgr, ck, SceneTruth(tuple(truths), drift, self.noise_c)

    def _paste_visible(self, canvas: np.ndarray, person: Person) -> np.ndarray:
        scale = person.face_width_px * EYE_SPAN_RATIO / CHIP_IPD
        centre = CHIP_EYES.mean(axis=0)
        m = np.array([[scale, 0, person.x - scale * centre[0]],
                      [0, scale, person.y - scale * centre[1]]], dtype=np.float64)
        vw, vh = self.calibration.visible_size
        chip = self.photos[person.photo]
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        warped = cv2.warpAffine(chip, m, (vw, vh), flags=interp).astype(np.float32)
        alpha = cv2.warpAffine(self._mask, m, (vw, vh), flags=cv2.INTER_LINEAR)[:, :, None]
        canvas *= 1.0 - alpha
        canvas += warped * alpha
        return CHIP_EYES * scale + m[:, 2]

    def _paint_person(self, field_c: np.ndarray, eyes_th: np.ndarray, canthus_c: float,
                      a: _Anatomy) -> tuple[float, float]:
        """Paint one person into the supersampled field; return a pixel beside a canthus
        (thermal coordinates) for a transient hot pixel."""
        s = SUPERSAMPLE
        eyes = (eyes_th + 0.5) * s - 0.5
        span = float(np.linalg.norm(eyes[1] - eyes[0]))
        u = (eyes[1] - eyes[0]) / span
        v = np.array([-u[1], u[0]])
        mid = eyes.mean(axis=0)
        hh, hw = field_c.shape
        r = math.ceil(3.2 * span)
        x0, x1 = max(0, int(mid[0]) - r), min(hw, int(mid[0]) + r + 1)
        y0, y1 = max(0, int(mid[1]) - int(1.8 * span)), min(hh, int(mid[1]) + r + 1)
        if x0 >= x1 or y0 >= y1:
            return (-1.0, -1.0)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dx, dy = xs - mid[0], ys - mid[1]
        fa = (dx * u[0] + dy * u[1]) / span  # across the face, eye gap units
        fb = (dx * v[0] + dy * v[1]) / span  # down the face
        local = field_c[y0:y1, x0:x1]
        ambient = self.ambient_c
        skin = canthus_c - a.skin_below
        torso = (fb > 1.9) & (np.abs(fa) < 1.6 + 0.6 * (fb - 1.9))
        local[torso] = ambient + a.cloth_above_ambient
        neck = (np.abs(fa) < 0.55) & (fb > 1.0) & (fb < 2.3)
        local[neck] = skin - 0.5
        head = (fa / 1.15) ** 2 + ((fb - 0.3) / 1.65) ** 2 < 1.0
        hair = head & (fb < -0.95 + 0.35 * fa ** 2)
        local[head] = skin + 0.3 * np.clip(-fb[head], 0, 1)
        local[hair] = ambient + a.hair_above_ambient

        def near(ca: float, cb: float, radius: float) -> tuple[slice, slice]:
            """Slices of the window within `radius` eye gaps of face point (ca, cb)."""
            centre = mid + (ca * u + cb * v) * span - (x0, y0)
            r_px = radius * span + 1
            return (slice(max(0, int(centre[1] - r_px)), max(0, int(centre[1] + r_px) + 1)),
                    slice(max(0, int(centre[0] - r_px)), max(0, int(centre[0] + r_px) + 1)))

        sl = near(0.0, 0.75, 0.7)  # cooler nose
        g = np.exp(-((fa[sl] / 0.2) ** 2 + ((fb[sl] - 0.75) / 0.22) ** 2) / 2)
        local[sl] = np.where(head[sl] & ~hair[sl], local[sl] - a.nose_cool * g, local[sl])
        for k in (-1, 1):  # corneas: cooler than the surrounding skin of the eye socket
            sl = near(0.5 * k, 0.0, 0.2)
            cornea = ((fa[sl] - 0.5 * k) / 0.17) ** 2 + (fb[sl] / 0.08) ** 2 < 1.0
            local[sl] = np.where(cornea & head[sl], skin + 0.2, local[sl])
        spots = []
        for k, is_right in ((-1, True), (1, False)):
            hot = canthus_c if is_right == a.right_is_hotter else canthus_c - a.other_cooler
            ca, cb = k * (0.5 - a.inward), a.down
            sl = near(ca, cb, 0.35)
            d = np.sqrt((fa[sl] - ca) ** 2 + (fb[sl] - cb) ** 2)
            peri = hot - a.peri_below
            peri_field = skin + (peri - skin) * np.exp(-(d / 0.12) ** 2 / 2)
            edge = np.clip((d - a.radius) / 0.05, 0.0, 1.0)
            disc = hot - (hot - peri_field) * (0.5 - 0.5 * np.cos(np.pi * edge))
            inside = head[sl] & ~hair[sl] & (d < 0.35)
            local[sl] = np.where(inside, np.maximum(local[sl], np.maximum(peri_field, disc)),
                                 local[sl])
            centre = mid + (ca * u + cb * v) * span
            spots.append(((centre[0] + 0.5) / s - 0.5, (centre[1] + 0.5) / s - 0.5))
        spot = spots[int(self._rng.integers(2))]
        off = self._rng.integers(-2, 3, 2)
        return (spot[0] + float(off[0]), spot[1] + float(off[1]))

    def _paint_blackbody(self, field_c: np.ndarray) -> None:
        x, y, w, h = self.calibration.blackbody_roi
        s = SUPERSAMPLE
        m = 2  # the emitter is larger than the ROI, so the optics' blur stays outside it
        cv2.rectangle(field_c, ((x - m) * s, (y - m) * s), ((x + w + m) * s - 1,
                                                          (y + h + m) * s - 1),
                      float(self.calibration.blackbody_c), -1)

    def _sense(self, field_c: np.ndarray, transient: list[tuple[float, float]]
               ) -> tuple[np.ndarray, float]:
        tw, th = self.calibration.thermal_size
        blurred = cv2.GaussianBlur(field_c, (0, 0), 0.5 * SUPERSAMPLE)
        frame: np.ndarray = cv2.resize(blurred, (tw, th), interpolation=cv2.INTER_AREA)
        drift = float(self._rng.uniform(-self.max_drift_c, self.max_drift_c))
        frame += drift
        frame += self._rng.normal(0.0, self.noise_c, frame.shape).astype(np.float32)
        rows, cols, heat = self._defects
        frame[rows, cols] += heat.astype(np.float32)
        for sx, sy in transient:
            ix, iy = round(sx), round(sy)
            if 0 <= ix < tw and 0 <= iy < th:
                frame[iy, ix] += float(self._rng.uniform(2.0, 15.0))
        return frame, drift
