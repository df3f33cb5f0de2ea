"""Lane gate zones in the pixels of the frames at hand.

The settings give a zone relative to the frame (0..1), or in pixels with the resolution it was
drawn for (foundation.settings_lanes). `Lane.fit(width, height)` turns it into the pixel
polygon of this frame size (once per size, logged as `lane_zone_fitted`), and raises
`ZoneResolutionError` (logged `lane_zone_resolution_mismatch`) when a pixel zone was drawn for
another resolution: the daemon stops rather than present nobody. A `Lane` built with a bare
pixel polygon (tests, benches) keeps it as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
import structlog

from edge.decisions.lanes import LaneMachine
from foundation.settings_lanes import LaneSettings, ZoneResolutionError

log = structlog.get_logger(__name__)


def zone_polygon(setting: LaneSettings, width: int, height: int) -> np.ndarray:
    """The (k, 2) float32 pixel polygon of `setting`'s zone on a `width`x`height` frame."""
    try:
        return np.asarray(setting.zone_pixels(width, height), np.float32)
    except ZoneResolutionError as exc:
        log.error("lane_zone_resolution_mismatch", lane=setting.lane_id,
                  zone_resolution=list(setting.zone_resolution or ()),
                  resolution=[width, height], error=str(exc))
        raise


@dataclass
class Lane:
    machine: LaneMachine
    zone: np.ndarray  # (k, 2) float32 polygon in the pixels of the current frame
    setting: LaneSettings | None = None  # the zone as configured, fitted to each frame size
    _size: tuple[int, int] | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, machine: LaneMachine, setting: LaneSettings) -> Lane:
        """A lane whose zone follows the frame size (placeholder polygon until the first
        frame; a resolution-bound zone starts in its own pixels)."""
        own = setting.zone_resolution or (1, 1)
        return cls(machine, np.asarray(setting.zone_pixels(*own), np.float32), setting)

    def fit(self, width: int, height: int) -> None:
        """Make `zone` the pixels of a `width`x`height` frame (ZoneResolutionError when the
        configured pixel zone was drawn for another size)."""
        if self.setting is None or self._size == (width, height):
            return
        self.zone = zone_polygon(self.setting, width, height)
        self._size = (width, height)
        log.info("lane_zone_fitted", lane=self.machine.lane, resolution=[width, height],
                 relative=self.setting.zone_resolution is None)

    def contains(self, point: tuple[float, float]) -> bool:
        return cv2.pointPolygonTest(self.zone, (float(point[0]), float(point[1])), False) >= 0


def fit_zones(lanes: Mapping[str, Lane], image: np.ndarray) -> None:
    """Fit every lane's zone to this frame's size."""
    height, width = image.shape[:2]
    for lane in lanes.values():
        lane.fit(int(width), int(height))
