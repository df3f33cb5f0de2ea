"""The cameras the settings name: the one place that picks a visible frame source.

Part of the daemon's composition root (edge.daemon re-exports `visible_source`; provisioning's
camera checks use it too): a synthetic scene, an image folder, or an OpenCV device, file or URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge.capture.opencv import ImageFolderSource, OpenCVSource
from edge.capture.source import FrameSource
from edge.operations.errors import DaemonError
from foundation.clock import Clock
from foundation.settings import Settings


def visible_source(settings: Settings, clock: Clock, spec: str | None = None) -> FrameSource:
    """The camera the settings name (the only place that picks an implementation)."""
    spec = spec or settings.capture.visible_source
    if spec == "synthetic":
        from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
        from edge.screening.synth_source import SyntheticScene

        calibration = (load_calibration(settings) if settings.thermal.calibration_file
                       else synthetic_calibration((640, 480), (160, 120),
                                                  seed=settings.capture.synthetic_seed))
        renderer = SceneRenderer(calibration, default_face_photos(),
                                 seed=settings.capture.synthetic_seed)
        return SyntheticScene(renderer, clock, fps=settings.capture.fps, auto_walk_s=2.0)
    if Path(spec).is_dir():
        return ImageFolderSource(spec, fps=settings.capture.fps)
    return OpenCVSource(spec, read_timeout_s=settings.capture.read_timeout_s)


def load_calibration(settings: Settings) -> Any:
    """The thermal calibration the settings name; DaemonError when none is set."""
    from edge.screening.calibration import load_calibration as load

    if settings.thermal.calibration_file is None:
        raise DaemonError("thermal screening needs thermal.calibration_file: run `python -m "
                          "provisioning calibrate-thermal` or set thermal.enabled = false")
    return load(settings.thermal.calibration_file)
