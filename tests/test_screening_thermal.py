"""ThermalScreener: accuracy on rendered scenes, drift and hot-pixel handling, every unreliable
reason, bad frames, per-track fusion and both threshold modes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from structlog.testing import capture_logs

from edge.capture.thermal import CK_AT_0C, ThermalFrameError
from edge.screening.calibration import Calibration
from edge.screening.synth import Person, SceneRenderer, default_face_photos, synthetic_calibration
from edge.screening.thermal import REASONS, Decision, Reading, ThermalScreener
from edge.vision.types import Face
from foundation.settings import ThermalSettings


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return default_face_photos()


@pytest.fixture(scope="module")
def cal160() -> Calibration:
    return synthetic_calibration((640, 480), (160, 120), seed=11)


@pytest.fixture(scope="module")
def scene(cal160: Calibration, photos: list[np.ndarray]) -> tuple[np.ndarray, Face, float]:
    renderer = SceneRenderer(cal160, photos, seed=11)
    _, thermal, truth = renderer.render([Person(0, 320, 230, 200, 37.4)])
    return thermal, truth.people[0].face(), 37.4


def _screener(cal: Calibration, **kw: object) -> ThermalScreener:
    return ThermalScreener(cal, ThermalSettings(**kw))


def _face_at(x: float, y: float, gap: float) -> Face:
    lm = np.array([[x - gap / 2, y], [x + gap / 2, y], [x, y + gap * 0.6],
                   [x - gap * 0.4, y + gap], [x + gap * 0.4, y + gap]], dtype=np.float32)
    return Face(box=(x - gap * 1.2, y - gap, gap * 2.4, gap * 3), score=0.9, landmarks=lm)


def _canthus_peak(frame: np.ndarray, face: Face, cal: Calibration) -> tuple[int, int]:
    te = cal.to_thermal(face.landmarks[:2])
    x0, x1 = int(te[:, 0].min()), int(te[:, 0].max()) + 1
    y0, y1 = int(te[:, 1].mean()) - 4, int(te[:, 1].mean()) + 5
    sub = frame[y0:y1, x0:x1]
    r, c = np.unravel_index(int(np.argmax(sub)), sub.shape)
    return y0 + int(r), x0 + int(c)


@pytest.mark.parametrize("size", [(160, 120), (320, 240)])
def test_accuracy_on_rendered_scenes(photos: list[np.ndarray], size: tuple[int, int]) -> None:
    cal = synthetic_calibration((640, 480), size, seed=21)
    renderer = SceneRenderer(cal, photos, seed=21)
    screener = ThermalScreener(cal, ThermalSettings())
    rng = np.random.default_rng(5)
    errors = []
    for i in range(8):
        truth_c = float(rng.uniform(35.5, 39.5))
        person = Person(0, float(rng.uniform(220, 400)), float(rng.uniform(200, 260)),
                        float(rng.uniform(160, 280)), truth_c, variant=i)
        _, thermal, truth = renderer.render([person])
        reading = screener.measure([truth.people[0].face()], thermal)[0]
        assert reading.status == "ok", reading
        errors.append(reading.canthus_c - truth_c)
    errors = np.abs(errors)
    assert errors.max() <= 0.3 and errors.mean() <= 0.15, errors


def test_drift_is_corrected_by_the_blackbody(scene: tuple, cal160: Calibration) -> None:
    thermal, face, truth_c = scene
    screener = _screener(cal160)
    base = screener.measure([face], thermal)[0].canthus_c
    assert abs(base - truth_c) <= 0.3
    # the whole camera drifts by +0.8 K: blackbody and face alike -> same reading
    drifted = screener.measure([face], thermal + np.uint16(80))[0].canthus_c
    assert drifted == pytest.approx(base, abs=0.011)
    # only the scene warms (blackbody unchanged) -> the reading follows the scene
    warmer = thermal + np.uint16(80)
    x, y, w, h = cal160.blackbody_roi
    warmer[y:y + h, x:x + w] = thermal[y:y + h, x:x + w]
    assert screener.measure([face], warmer)[0].canthus_c == pytest.approx(base + 0.8, abs=0.011)


@pytest.mark.parametrize("pair", [False, True])
def test_hot_pixels_at_the_canthus_are_ignored(scene: tuple, cal160: Calibration,
                                                pair: bool) -> None:
    thermal, face, _ = scene
    screener = _screener(cal160)
    base = screener.measure([face], thermal)[0].canthus_c
    r, c = _canthus_peak(thermal, face, cal160)
    spiked = thermal.copy()
    spiked[r, c + 1] += 800  # +8 K on a single pixel beside the hottest one
    if pair:
        spiked[r + 1, c + 1] += 500
    got = screener.measure([face], spiked)[0].canthus_c
    assert got == pytest.approx(base, abs=0.1)
    assert ThermalScreener(cal160, ThermalSettings(hot_pixel_c=50)).measure(
        [face], spiked)[0].canthus_c > base + 0.5  # proof that the spike would have mattered


def test_blackbody_hidden(scene: tuple, cal160: Calibration) -> None:
    thermal, face, _ = scene
    covered = thermal.copy()
    x, y, w, h = cal160.blackbody_roi
    covered[y:y + h, x:x + w // 2] = CK_AT_0C + 3000  # a sleeve over half the reference
    assert _screener(cal160).measure([face], covered)[0] == Reading.unreliable(
        "blackbody_not_visible")


def test_blackbody_out_of_range(scene: tuple, cal160: Calibration) -> None:
    thermal, face, _ = scene
    off = thermal.copy()
    x, y, w, h = cal160.blackbody_roi
    off[y:y + h, x:x + w] += 300  # reference 3 K above its set point (heater fault)
    assert _screener(cal160).measure([face], off)[0].reason == "blackbody_out_of_range"
    assert _screener(cal160, blackbody_max_drift_c=4.0).measure([face], off)[0].status == "ok"


def test_saturated_eyes_and_reference(scene: tuple, cal160: Calibration) -> None:
    thermal, face, _ = scene
    hot = thermal.copy()
    r, c = _canthus_peak(thermal, face, cal160)
    hot[r, c] = 65535
    assert _screener(cal160).measure([face], hot)[0].reason == "saturated"
    bb = thermal.copy()
    x, y, _, _ = cal160.blackbody_roi
    bb[y, x] = 0
    assert _screener(cal160).measure([face], bb)[0].reason == "saturated"


def test_too_few_pixels_across_the_eyes(scene: tuple, cal160: Calibration) -> None:
    thermal, _, _ = scene
    small = _face_at(320, 240, 20)  # 20 visible px -> about 5 thermal px between the eyes
    assert _screener(cal160).measure([small], thermal)[0].reason == "too_few_pixels"
    assert _screener(cal160, min_eye_span_px=3).measure([small], thermal)[0].reason != \
        "too_few_pixels"


@pytest.mark.parametrize(("x", "y"), [(-400, 200), (320, 2000), (8, 240), (630, 240)])
def test_face_outside_the_thermal_view(scene: tuple, cal160: Calibration, x: float,
                                       y: float) -> None:
    thermal, _, _ = scene
    assert _screener(cal160).measure([_face_at(x, y, 80)], thermal)[0].reason == \
        "outside_thermal_view"


def test_bad_landmarks(scene: tuple, cal160: Calibration) -> None:
    thermal, face, _ = scene
    lm = face.landmarks.copy()
    lm[0, 0] = np.nan
    bad = Face(box=face.box, score=face.score, landmarks=lm)
    assert _screener(cal160).measure([bad], thermal)[0].reason == "bad_landmarks"


def test_every_reason_has_an_operator_message() -> None:
    assert all(REASONS[k] for k in REASONS)


def test_several_faces_keep_their_order(scene: tuple, cal160: Calibration) -> None:
    thermal, face, _ = scene
    readings = _screener(cal160).measure([_face_at(-400, 200, 80), face, _face_at(320, 240, 4)],
                                         thermal)
    assert [r.status for r in readings] == ["unreliable", "ok", "unreliable"]
    assert _screener(cal160).measure([], thermal) == []


@pytest.mark.parametrize("frame", [
    np.zeros((240, 320), np.uint16),  # another camera's size
    np.zeros((120, 160), np.uint8),
    np.zeros((120, 160, 3), np.uint16),
    np.zeros((0,), np.uint16),
])
def test_unusable_frames_raise(cal160: Calibration, frame: np.ndarray) -> None:
    with pytest.raises(ThermalFrameError):
        _screener(cal160).measure([], frame)


def test_no_identity_and_no_pixels_in_results_or_logs(scene: tuple, cal160: Calibration) -> None:
    thermal, face, _ = scene
    assert {f.name for f in dataclasses.fields(Reading)} == {"canthus_c", "status", "reason"}
    assert {f.name for f in dataclasses.fields(Decision)} == {"status", "canthus_c", "reason"}
    with capture_logs() as logs:
        screener = _screener(cal160)
        fusion = screener.new_track()
        fusion.add(screener.measure([face], thermal)[0])
        fusion.decide()
    for event in logs:
        assert not any(isinstance(v, np.ndarray | bytes) for v in event.values())


# ---- fusion and decisions -----------------------------------------------------------------------

def _ok(c: float) -> Reading:
    return Reading(c, "ok", None)


def test_fusion_median_drops_outliers(cal160: Calibration) -> None:
    fusion = _screener(cal160, fuse_frames=5).new_track()
    for c in (36.5, 36.6, 36.7, 39.9, 36.6):
        fusion.add(_ok(c))
    assert fusion.decide() == Decision("pass", 36.6, None)


def test_fusion_uses_only_the_last_n(cal160: Calibration) -> None:
    fusion = _screener(cal160, fuse_frames=5).new_track()
    for c in [39.0] * 5 + [36.6] * 5:
        fusion.add(_ok(c))
    assert fusion.decide().status == "pass"


def test_fusion_needs_enough_good_readings(cal160: Calibration) -> None:
    fusion = _screener(cal160, fuse_frames=5).new_track()
    assert fusion.decide() == Decision("unreliable", None, "too_few_readings")
    fusion.add(_ok(36.6))
    fusion.add(_ok(36.7))
    assert fusion.decide().reason == "too_few_readings"
    for _ in range(3):
        fusion.add(Reading.unreliable("blackbody_not_visible"))
    assert fusion.decide() == Decision("unreliable", None, "blackbody_not_visible")
    fusion.add(_ok(36.6))  # window now: 36.7, bb, bb, bb, 36.6 -> still too few
    assert fusion.decide().status == "unreliable"
    fusion.add(_ok(36.8))
    fusion.add(_ok(36.5))
    assert fusion.decide().status == "pass"


def test_absolute_threshold_and_core_offset(cal160: Calibration) -> None:
    s = _screener(cal160, fuse_frames=1)
    for c, want in ((38.0, "refer"), (37.99, "pass"), (39.5, "refer"), (35.0, "pass")):
        f = s.new_track()
        f.add(_ok(c))
        assert f.decide().status == want, c
    offset = dataclasses.replace(cal160, canthus_to_core_offset_c=0.3)
    f = ThermalScreener(offset, ThermalSettings(fuse_frames=1)).new_track()
    f.add(_ok(37.75))
    assert f.decide() == Decision("refer", 37.75, None)


def test_baseline_mode(cal160: Calibration) -> None:
    s = _screener(cal160, fuse_frames=1, mode="baseline", baseline_delta_c=1.0,
                  baseline_window=10)
    assert s.threshold_c() == 38.0  # warm-up: absolute until enough passes
    first = s.new_track()
    first.add(_ok(36.0))
    for _ in range(5):  # one track deciding again and again counts once
        assert first.decide().status == "pass"
    assert s.baseline_size() == 1
    for c in (35.8, 36.1, 36.0, 36.2):
        f = s.new_track()
        f.add(_ok(c))
        f.decide()
    assert s.baseline_size() == 5
    assert s.threshold_c() == pytest.approx(37.0)
    warm = s.new_track()
    warm.add(_ok(37.2))  # below the absolute 38 but 1.2 above the crowd
    assert warm.decide().status == "refer"
    assert s.baseline_size() == 5  # referrals never enter the baseline
    for _ in range(10):  # the window forgets old passes
        f = s.new_track()
        f.add(_ok(36.6))
        f.decide()
    assert s.threshold_c() == pytest.approx(37.6)
