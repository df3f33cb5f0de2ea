"""Which presentation-attack detection runs on this box, and its gate: part of the composition root.

`build_pad(settings, screener, board)` (edge.daemon) returns the `PadGate` the pipeline runs
before any match, or None when PAD neither runs nor is required, and puts the PAD line on the
lane board. `pad_summary(settings)` says the same in words for the board and for `python -m
provisioning verify`, so neither ever claims PAD where none runs:

* `thermal`: thermal PAD (edge.screening.pad) on the calibrated radiometric camera, when
  `pad.enabled` and a thermal camera is in use (`thermal.enabled` and a thermal source, or the
  synthetic scene that renders one);
* `none`: no PAD. Where PAD is required (`pad.required`, default: a thermal camera is in use)
  every traveller then goes to the staffed lane; where it is not, grants rest on the face match
  alone and the board and verify say so.

The visible-only model (faceplugin's fr_liveness.onnx) is not wired: it did not separate
synthetic re-photographs from bona fide photos (docs/rooms/screening.md, "Visible-only PAD").
"""

from __future__ import annotations

from typing import Any

import structlog

from edge.decisions.liveness import LivenessRules
from edge.decisions.pad_gate import PadGate
from foundation.settings import Settings
from foundation.settings_pad import active_pad, pad_required

log = structlog.get_logger(__name__)

_WORDS = {"thermal": "thermal (radiometric camera)", "visible": "visible model",
          "none": "none"}


def thermal_camera_in_use(settings: Settings) -> bool:
    """A thermal camera feeds the daemon: thermal enabled, and a thermal source set or the
    synthetic scene (which renders thermal frames itself) as the visible camera."""
    t = settings.thermal
    synthetic = settings.capture.visible_source.type == "synthetic"
    return t.enabled and (t.source is not None or synthetic)


def pad_summary(settings: Settings, thermal_camera: bool | None = None) -> dict[str, Any]:
    """The PAD line: {"active", "required", "unknown_policy", "message"} (no identity)."""
    camera = thermal_camera_in_use(settings) if thermal_camera is None else thermal_camera
    pad = settings.pad
    active = active_pad(pad, camera)
    required = pad_required(pad, camera)
    unknown = ("unknown: staffed lane" if pad.unknown_policy == "staffed_lane"
               else "unknown: allowed on to the match")
    if active != "none":
        message = (f"Presentation-attack detection: {_WORDS[active]}, "
                   f"{'required' if required else 'not required'}; {unknown}")
    elif required:
        message = ("Presentation-attack detection: none running, but required: every traveller "
                   "goes to the staffed lane")
    else:
        message = ("Presentation-attack detection: none (no thermal camera): grants rest on the "
                   "face match alone")
    return {"active": active, "required": required, "unknown_policy": pad.unknown_policy,
            "message": message}


def build_pad(settings: Settings, screener: Any, board: Any = None) -> PadGate | None:
    """The pipeline's PAD gate for this box (None: no PAD and none required); the board gets
    the PAD line. `screener` is the thermal screener (its calibration maps faces into the
    thermal frame), None without a thermal camera."""
    summary = pad_summary(settings, thermal_camera=screener is not None)
    if board is not None:
        board.publish_pad(summary)
    pad = settings.pad
    rules = LivenessRules.from_settings(pad)
    allow = pad.unknown_policy == "allow"
    log.info("pad_configured", active=summary["active"], required=summary["required"],
             unknown_policy=pad.unknown_policy)
    if summary["active"] == "thermal":
        from edge.screening.pad import PadDetector

        return PadGate(PadDetector(screener.calibration), rules, allow_unknown=allow,
                       kind="thermal")
    if summary["required"]:
        log.warning("pad_required_but_none", action="every traveller goes to the staffed lane: "
                    "configure the thermal camera, or set pad.required = false")
        return PadGate(None, rules, allow_unknown=allow, kind="none")
    return None
