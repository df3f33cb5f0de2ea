"""Lane zones relative to the frame fit any camera resolution; a pixel zone names the resolution
it was drawn for and the daemon refuses another one (never 0 presented without a word)."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.testing import capture_logs

from edge.capture.source import Frame
from edge.decisions.events import EventBus, Kind
from edge.decisions.lanes import LaneMachine, LaneRules, LaneState
from edge.decisions.pipeline import Lane, Pipeline
from edge.vision.types import Face, Quality
from foundation.clock import FakeClock
from foundation.settings import LaneSettings, SettingsError, ZoneResolutionError, parse_settings
from provisioning.checks.cameras import check_zones

CENTRE = [(0.4, 0.3), (0.6, 0.3), (0.6, 0.7), (0.4, 0.7)]  # the middle of any frame


def centre_face(width: int, height: int) -> Face:
    x, y = width / 2, height / 2
    lm = np.array([[x - 20, y - 10], [x + 20, y - 10], [x, y], [x - 15, y + 20],
                   [x + 15, y + 20]], np.float32)
    return Face((x - 40, y - 50, 80, 100), 0.9, lm)


class OneFaceEngine:
    """Detects one face in the middle of whatever frame it is given; never good enough to
    embed (this test is about zones, not matching)."""

    def detect(self, image):
        return [centre_face(image.shape[1], image.shape[0])]

    def embed(self, image, faces):
        raise AssertionError("quality is never good: nothing may be embedded")

    def quality(self, image, face) -> Quality:
        return Quality(False, "blurry")


def _pipeline(setting: LaneSettings, events: list) -> Pipeline:
    clock = FakeClock()
    lane = Lane.from_settings(LaneMachine("A", LaneRules(), clock), setting)
    return Pipeline(engine=OneFaceEngine(), lanes=[lane], matcher=None, gate=None,
                    boarding=None, bus=EventBus([events.append]), clock=clock)


def _run(pipeline: Pipeline, width: int, height: int, frames: int = 4) -> None:
    image = np.zeros((height, width, 3), np.uint8)
    for seq in range(1, frames + 1):
        pipeline.clock.advance(0.1)
        pipeline.process(Frame(seq, pipeline.clock.monotonic(), image))


@pytest.mark.parametrize("size", [(640, 480), (1280, 720), (1920, 1080), (320, 240)])
def test_a_relative_zone_presents_at_any_resolution(size: tuple[int, int]) -> None:
    events: list = []
    pipeline = _pipeline(LaneSettings(lane_id="A", zone=CENTRE), events)
    with capture_logs() as logs:
        _run(pipeline, *size)
    assert pipeline.lanes["A"].machine.state is LaneState.PRESENTING
    assert [e.kind for e in events].count(Kind.PRESENTED) == 1
    fitted = [e for e in logs if e["event"] == "lane_zone_fitted"]
    assert fitted == [{"event": "lane_zone_fitted", "log_level": "info", "lane": "A",
                       "resolution": list(size), "relative": True}]  # once, not every frame


def test_a_pixel_zone_at_its_resolution_presents() -> None:
    events: list = []
    zone = [(256, 144), (384, 144), (384, 360), (256, 360)]  # CENTRE in 640x480 pixels
    pipeline = _pipeline(LaneSettings(lane_id="A", zone=zone, zone_resolution=(640, 480)),
                         events)
    _run(pipeline, 640, 480)
    assert [e.kind for e in events].count(Kind.PRESENTED) == 1


def test_a_pixel_zone_on_another_resolution_is_refused_naming_both() -> None:
    events: list = []
    zone = [(256, 144), (384, 144), (384, 360), (256, 360)]
    pipeline = _pipeline(LaneSettings(lane_id="A", zone=zone, zone_resolution=(640, 480)),
                         events)
    with capture_logs() as logs, pytest.raises(ZoneResolutionError) as info:
        _run(pipeline, 1280, 720)
    said = str(info.value)
    assert "640x480" in said and "1280x720" in said and "relative to the frame" in said
    assert isinstance(info.value, SettingsError)  # the inference loop stops on it
    assert not events  # nobody presented, and the daemon is told why
    assert any(e["event"] == "lane_zone_resolution_mismatch" and e["resolution"] == [1280, 720]
               for e in logs)


@pytest.mark.parametrize(("lane", "said"), [
    ({"zone": [(0, 0), (640, 0), (640, 480)]}, "add zone_resolution = [WIDTH, HEIGHT]"),
    ({"zone": [(0, 0), (0.5, 0), (0.5, 1.5)]}, "zone has points outside 0..1"),
    ({"zone": [(0, 0), (700, 0), (700, 480)], "zone_resolution": [640, 480]},
     "outside its zone_resolution 640x480"),
    ({"zone": [(0, 0), (10, 0), (10, 10)], "zone_resolution": [4, 4]},
     "between 16 and 16384"),
    ({"zone": [(0, 0), (1, 0), (0, 0)]}, "at least 3 distinct points"),
])
def test_zone_settings_refused_at_load(lane: dict, said: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings({"lanes": {"lanes": [{"lane_id": "A", **lane}]}})
    assert said in str(info.value)


def test_defaults_are_relative_and_fit_any_camera() -> None:
    lane = parse_settings({}).lanes.lanes[0]
    assert lane.zone_resolution is None
    assert lane.zone_pixels(1920, 1080) == [(0, 0), (1920, 0), (1920, 1080), (0, 1080)]
    assert check_zones([lane], (1920, 1080))[0].status == "pass"


def test_verify_names_a_zone_that_does_not_fit() -> None:
    lanes = parse_settings({"lanes": {"lanes": [
        {"lane_id": "A", "zone": CENTRE},
        {"lane_id": "B", "zone": [(0, 0), (64, 0), (64, 48)], "zone_resolution": [640, 480]},
    ]}}).lanes.lanes
    ok = check_zones(lanes, (640, 480))
    assert [r.status for r in ok] == ["pass"] and "pixel and relative" in ok[0].detail
    bad = check_zones(lanes, (1280, 720))
    assert bad[0].status == "fail" and "lane B" in bad[0].detail
    assert "640x480" in bad[0].detail and "1280x720" in bad[0].detail and "lane A" not in \
        bad[0].detail
    assert LaneSettings(lane_id="B", zone=[(0, 0), (64, 0), (64, 48)],
                        zone_resolution=(640, 480)).relative_zone()[1] == (0.1, 0.0)
