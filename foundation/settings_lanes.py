"""The [lanes] settings section: the lanes, their gate zones, lane timings and the tracker.

A gate zone is a polygon over the visible frame. By default its points are relative to the
frame (0..1 on both axes: `[0.5, 0.5]` is the centre), so the zone fits a camera at any
resolution. A zone drawn in pixels names the resolution it was drawn for
(`zone_resolution = [1280, 720]`); the daemon then refuses to run on a camera at another
resolution (`ZoneResolutionError`, naming both), because a pixel zone on a larger frame covers
the wrong place and a smaller one nobody: 0 presented, without a word. `zone_pixels(w, h)` is the
one place a zone becomes pixels.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from foundation.settings_base import Section, SettingsError

Point = tuple[float, float]
Resolution = tuple[int, int]
_FULL_FRAME: list[Point] = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]


class ZoneResolutionError(SettingsError):
    """A lane zone in pixels was drawn for another resolution than the camera delivers."""


class LaneSettings(Section):
    lane_id: str = Field(..., min_length=1, max_length=16, description="lane name")
    zone: list[Point] = Field(..., min_length=3, max_length=64,
                              description="gate zone polygon: points relative to the visible "
                                          "frame (0..1), or pixels with zone_resolution")
    zone_resolution: Resolution | None = Field(
        None, description="only for a zone in pixels: the frame size (width, height) it was "
                          "drawn for; the daemon refuses a camera at another resolution")

    @model_validator(mode="after")
    def _polygon(self) -> LaneSettings:
        if len(set(self.zone)) < 3:
            raise ValueError("zone needs at least 3 distinct points")
        res = self.zone_resolution
        if res is None:
            if any(not (0.0 <= c <= 1.0) for p in self.zone for c in p):
                raise ValueError(
                    f"lane {self.lane_id}: zone has points outside 0..1, so it is in pixels: "
                    "add zone_resolution = [WIDTH, HEIGHT], the frame size it was drawn for "
                    "(e.g. [640, 480]), or give the points relative to the frame (0..1)")
            return self
        if not (16 <= res[0] <= 16384 and 16 <= res[1] <= 16384):
            raise ValueError("zone_resolution: width and height between 16 and 16384 pixels")
        if any(not (0.0 <= x <= res[0] and 0.0 <= y <= res[1]) for x, y in self.zone):
            raise ValueError(f"lane {self.lane_id}: zone has points outside its "
                             f"zone_resolution {res[0]}x{res[1]}")
        return self

    def relative_zone(self) -> list[Point]:
        """The zone relative to the frame (0..1), whichever way it was written."""
        if self.zone_resolution is None:
            return list(self.zone)
        w, h = self.zone_resolution
        return [(x / w, y / h) for x, y in self.zone]

    def zone_fits(self, width: int, height: int) -> str | None:
        """None when the zone applies to a `width`x`height` frame, else why not (the fix)."""
        res = self.zone_resolution
        if res is None or tuple(res) == (width, height):
            return None
        return (f"lane {self.lane_id}: its zone was drawn in pixels for {res[0]}x{res[1]}, "
                f"but the visible camera delivers {width}x{height}: set the camera to "
                f"{res[0]}x{res[1]}, or redraw the zone for {width}x{height} "
                "(zone_resolution too), or write it relative to the frame (0..1, "
                "no zone_resolution)")

    def zone_pixels(self, width: int, height: int) -> list[Point]:
        """The zone in the pixels of a `width`x`height` frame; ZoneResolutionError when it was
        drawn in pixels for another resolution."""
        problem = self.zone_fits(width, height)
        if problem is not None:
            raise ZoneResolutionError(problem)
        if self.zone_resolution is not None:
            return list(self.zone)
        return [(x * width, y * height) for x, y in self.zone]


class LanesSettings(Section):
    lanes: list[LaneSettings] = Field(
        default_factory=lambda: [LaneSettings(lane_id="A", zone=list(_FULL_FRAME))],
        min_length=1, max_length=16, description="lanes and their gate zones")
    presenting_timeout_s: float = Field(5.0, gt=0, le=60, description="no decision -> idle")
    grant_ttl_ms: int = Field(8000, ge=500, le=60000, description="how long a grant stays open")
    heartbeat_interval_s: float = Field(0.5, gt=0, le=1.0, description="heartbeat to the gate")
    result_hold_s: float = Field(3.0, gt=0, le=60,
                                 description="a staffed-lane or refer result stays shown this long")
    track_iou: float = Field(0.3, gt=0, lt=1, description="tracker: IoU to continue a track")
    track_max_missed_s: float = Field(1.0, gt=0, le=30,
                                      description="tracker: a face unseen this long is gone")
    track_min_hits: int = Field(2, ge=1, le=10,
                                description="tracker: frames in a row a new face must be "
                                            "detected in before it counts as a person")
    evidence_frames: int = Field(3, ge=1, le=10, description="good frames of the presenting "
                                 "track fused for one decision (1: the first one decides)")
    evidence_spacing_s: float = Field(0.03, ge=0, le=2, description="evidence frames at least "
                                      "this far apart, spread over the presenting window")
    evidence_strong_margin: float = Field(0.1, gt=0, lt=1, description="one frame this far "
                                          "above the 1:N threshold grants at once")
    boarding_schedule: Path | None = Field(None, description="JSON or CSV of flight, start, "
                                           "end: the flights boarding when (edge.consent."
                                           "boarding); else the supervisor sets the flight")

    @model_validator(mode="after")
    def _distinct(self) -> LanesSettings:
        ids = [lane.lane_id for lane in self.lanes]
        if len(set(ids)) != len(ids):
            raise ValueError("lane_id must be distinct")
        return self
