"""The [matching] settings section: how this gate finds a traveller (gallery, token or both).

* `gallery`: 1:N against the opted-in travellers of the flight boarding now (the gallery);
* `token`: 1:1 only. A traveller enrolled with a passenger-held key (a QR code on the receipt)
  shows it at the gate; the box unseals that one template and compares it with the face. The
  box cannot search for or match anyone without their token (edge.consent.sealed);
* `both`: the token when one is shown, else the gallery; the kiosk lets each traveller choose.

Part of the one settings model (`foundation.settings.Settings.matching`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from foundation.settings_base import Section


class MatchingSettings(Section):
    mode: Literal["gallery", "token", "both"] = Field(
        "gallery", description="gallery: 1:N among opted-in travellers; token: 1:1 with the "
                               "template the traveller's own key unseals, no 1:N at all; both: "
                               "the token when shown, else the gallery")
    token_hold_s: float = Field(15.0, gt=0, le=120,
                                description="a token read at a lane waits this long for its "
                                            "traveller to present; then it is wiped")
    camera_codes: bool = Field(True, description="token/both: read tokens from QR codes in "
                                                 "the visible camera's frames")
    camera_codes_interval_s: float = Field(0.2, ge=0.02, le=5,
                                           description="look for a QR code in at most one "
                                                       "frame this often (its own thread)")
    camera_codes_repeat_s: float = Field(3.0, ge=0, le=60,
                                         description="a code that stays in view is read once; "
                                                     "again only after this long out of view")
    kiosk_scan: bool = Field(True, description="token/both: accept tokens from a keyboard-"
                                               "wedge scanner on the kiosk's lane board")
    scanner: Literal["none", "serial", "simulated"] = Field(
        "none", description="a code scanner at the lane: serial (a real one on scanner_port) "
                            "or simulated (demos and drills)")
    scanner_port: str | None = Field(None, description="serial scanner: port, e.g. "
                                                        "/dev/ttyACM0")
    scanner_baud: int = Field(9600, ge=1200, le=1_000_000, description="serial scanner: baud")
    scanner_lane: str | None = Field(None, min_length=1, max_length=16,
                                     description="the lane the scanner stands at (default: "
                                                 "the first lane)")

    @model_validator(mode="after")
    def _scanner(self) -> MatchingSettings:
        if self.scanner == "serial" and not self.scanner_port:
            raise ValueError("scanner 'serial' needs scanner_port, e.g. /dev/ttyACM0")
        return self
