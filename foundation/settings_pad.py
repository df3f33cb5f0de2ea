"""The presentation-attack detection section of the settings (`[pad]`).

Part of the one settings model (`foundation.settings.Settings.pad`, re-exported there); kept in
its own module so `foundation/settings.py` stays readable. PAD runs on the presenting track of
each lane before any gallery search (edge.decisions.liveness fuses its frames): `live` lets the
match go on, `attack` sends the traveller to staff without a search, `unknown` follows
`unknown_policy`. Which PAD is active (thermal, visible model, none) is the daemon's to say:
`active_pad` below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from foundation.settings_base import Section

PadKind = Literal["thermal", "visible", "none"]


class PadSettings(Section):
    """Presentation-attack detection (PAD): a live face before any gallery search."""

    enabled: bool = Field(True, description="run thermal PAD on the presenting track when a "
                                            "thermal camera is in use (thermal.enabled and a "
                                            "thermal source)")
    required: bool | None = Field(None, description="no grant without a PAD decision: with no "
                                                    "PAD running, every traveller goes to the "
                                                    "staffed lane. Default: required when a "
                                                    "thermal camera is in use")
    unknown_policy: Literal["staffed_lane", "allow"] = Field(
        "staffed_lane", description="what a PAD `unknown` (face too small in the thermal "
                                    "frame, out of its view, no thermal frame) does: send the "
                                    "traveller to the staffed lane, or let the match go on")
    fuse_frames: int = Field(5, ge=1, le=30, description="N: the last N measured (live or "
                                                         "attack) frames of the presenting "
                                                         "track are fused")
    live_frames: int = Field(3, ge=1, le=30, description="M: live when at least M of those N "
                                                         "are live and none is a confident "
                                                         "attack (M must be a majority of N)")
    confident_attack_score: float = Field(0.05, ge=0.0, le=0.5,
                                          description="an attack frame scoring at or below "
                                                      "this liveness score vetoes `live`")
    max_frames: int = Field(20, ge=1, le=600, description="frames of the presenting track PAD "
                                                          "looks at before it gives up: "
                                                          "`unknown` (no frame measurable) "
                                                          "or `inconclusive` (staffed lane)")

    @model_validator(mode="after")
    def _majority(self) -> PadSettings:
        if not self.fuse_frames / 2 < self.live_frames <= self.fuse_frames:
            raise ValueError("live_frames must be more than half of fuse_frames and at most "
                             "fuse_frames (e.g. 3 of 5)")
        if self.max_frames < self.fuse_frames:
            raise ValueError("max_frames must be at least fuse_frames")
        return self


def active_pad(pad: PadSettings, thermal_camera: bool) -> PadKind:
    """Which PAD runs: `thermal` when enabled and a thermal camera is in use, else `none`
    (the visible model is not adopted: docs/rooms/screening.md, "Visible-only PAD")."""
    return "thermal" if pad.enabled and thermal_camera else "none"


def pad_required(pad: PadSettings, thermal_camera: bool) -> bool:
    """`pad.required`, defaulting to whether a thermal camera is in use."""
    return thermal_camera if pad.required is None else pad.required
