"""The cameras the settings name: the one place that picks a visible frame source.

Part of the daemon's composition root (edge.daemon re-exports `visible_source`; provisioning's
camera checks use it too): a synthetic scene, an image folder, or an OpenCV device, file or URL.
"""

from __future__ import annotations

from typing import Any

from edge.capture.opencv import ImageFolderSource, OpenCVSource
from edge.capture.source import FrameSource
from edge.operations.errors import DaemonError
from foundation.clock import Clock
from foundation.settings import Settings
from foundation.settings_sources import (
    FileSource,
    FolderSource,
    StreamSource,
    SyntheticSource,
    V4l2Source,
    parse_visible_source,
)

AnySource = SyntheticSource | V4l2Source | StreamSource | FileSource | FolderSource


def visible_source(settings: Settings, clock: Clock,
                   source: AnySource | str | None = None) -> FrameSource:
    """The camera the settings name (the only place that picks an implementation): `source`
    (a source table, or a former plain string), else capture.visible_source; each `type` of
    foundation.settings_sources has one backend."""
    source = parse_visible_source(source or settings.capture.visible_source)
    if isinstance(source, SyntheticSource):
        from edge.screening.synth import SceneRenderer, default_face_photos, synthetic_calibration
        from edge.screening.synth_source import SyntheticScene

        calibration = (load_calibration(settings) if settings.thermal.calibration_file
                       else synthetic_calibration((640, 480), (160, 120),
                                                  seed=settings.capture.synthetic_seed))
        renderer = SceneRenderer(calibration, default_face_photos(),
                                 seed=settings.capture.synthetic_seed)
        return SyntheticScene(renderer, clock, fps=settings.capture.fps, auto_walk_s=2.0)
    if isinstance(source, FolderSource):
        return ImageFolderSource(source.path, fps=settings.capture.fps)
    # v4l2, stream, file: OpenCV's VideoCapture opens each
    return OpenCVSource(source.spec, read_timeout_s=settings.capture.read_timeout_s)


def load_calibration(settings: Settings) -> Any:
    """The thermal calibration the settings name; DaemonError when none is set."""
    from edge.screening.calibration import load_calibration as load

    if settings.thermal.calibration_file is None:
        raise DaemonError("thermal screening needs thermal.calibration_file: run `python -m "
                          "provisioning calibrate-thermal` or set thermal.enabled = false")
    return load(settings.thermal.calibration_file)
