"""SceneRenderer and face chips: deterministic, truthful, animatable; bad inputs refused."""

from __future__ import annotations

import numpy as np
import pytest

from edge.capture.thermal import CK_AT_0C
from edge.screening.synth import (
    CHIP_EYES,
    CHIP_SIZE,
    Person,
    SceneRenderer,
    SynthError,
    default_face_photos,
    face_chip,
    synthetic_calibration,
)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return default_face_photos()


@pytest.fixture(scope="module")
def cal():
    return synthetic_calibration((640, 480), (160, 120), seed=4)


def test_face_chip_puts_the_eyes_in_place() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    eyes = np.array([[150.0, 120.0], [230.0, 140.0]])  # tilted, 82 px apart
    for x, y in eyes:
        image[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 255
    chip = face_chip(image, eyes)
    assert chip.shape == (CHIP_SIZE[1], CHIP_SIZE[0], 3)
    for x, y in CHIP_EYES:
        assert chip[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].max() > 100
    with pytest.raises(SynthError, match="apart"):
        face_chip(image, np.array([[10.0, 10.0], [11.0, 10.0]]))


def test_render_is_deterministic_and_shaped(photos, cal) -> None:
    people = [Person(0, 300, 230, 200, 37.0)]
    a = SceneRenderer(cal, photos, seed=9).render(people)
    b = SceneRenderer(cal, photos, seed=9).render(people)
    c = SceneRenderer(cal, photos, seed=10).render(people)
    assert a[0].shape == (480, 640, 3) and a[0].dtype == np.uint8
    assert a[1].shape == (120, 160) and a[1].dtype == np.uint16
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_truth_matches_the_thermal_frame(photos, cal) -> None:
    renderer = SceneRenderer(cal, photos, seed=2, noise_c=0.0, max_drift_c=0.0,
                             hot_pixel_rate=0.0, transient_hot_share=0.0)
    _, thermal, truth = renderer.render([Person(0, 320, 230, 240, 38.6)])
    person = truth.people[0]
    assert truth.drift_c == 0.0 and person.canthus_c == 38.6
    te = person.thermal_eyes
    x0, x1 = int(te[:, 0].min()), int(te[:, 0].max()) + 1
    y = int(te[:, 1].mean())
    region = thermal[y - 4:y + 5, x0:x1].astype(float)
    peak_c = (region.max() - CK_AT_0C) / 100
    assert 38.2 <= peak_c <= 38.65  # the canthus is the hottest spot between the eyes
    x, y, w, h = cal.blackbody_roi
    assert np.allclose((thermal[y:y + h, x:x + w] - CK_AT_0C) / 100, cal.blackbody_c, atol=0.02)
    # the visible truth maps to the thermal truth through the calibration (plus parallax)
    shift = te - cal.to_thermal(person.landmarks[:2])
    assert np.allclose(shift[0], shift[1]) and np.abs(shift).max() <= 0.02 * 160 + 1e-6


def test_animated_walk_up(photos, cal) -> None:
    renderer = SceneRenderer(cal, photos, seed=3)
    widths = []
    for t in range(3):
        _, _, truth = renderer.render([Person(0, 320, 240, 120 + 60 * t, 36.9, variant=7)])
        widths.append(truth.people[0].box[2])
    assert widths == [120, 180, 240]


def test_two_people_and_no_people(photos, cal) -> None:
    renderer = SceneRenderer(cal, photos, seed=3)
    _, _, truth = renderer.render([Person(0, 200, 240, 150, 36.5), Person(0, 450, 240, 180, 39)])
    assert sorted(p.canthus_c for p in truth.people) == [36.5, 39]
    visible, _, truth = renderer.render([])
    assert truth.people == () and visible.shape == (480, 640, 3)


@pytest.mark.parametrize("person", [Person(3, 320, 240, 200, 37), Person(0, 320, 240, 2, 37)])
def test_bad_placements(photos, cal, person: Person) -> None:
    with pytest.raises(SynthError):
        SceneRenderer(cal, photos, seed=1).render([person])


def test_photos_must_be_chips(cal) -> None:
    with pytest.raises(SynthError, match="chips"):
        SceneRenderer(cal, [np.zeros((100, 100, 3), np.uint8)])
    with pytest.raises(SynthError, match="at least one"):
        SceneRenderer(cal, [])
