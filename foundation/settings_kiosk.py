"""The kiosk's section of the settings (`[kiosk]`): serving, staff sessions, log-in back-off.

Part of the one settings model (`foundation.settings.Settings.kiosk`, re-exported there); kept
in its own module so `foundation/settings.py` stays readable.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from foundation.settings_sources import VisibleSource


class KioskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="serve the staff kiosk")
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8443, ge=1, le=65535, description="bind port")
    tls_cert_file: Path | None = Field(None, description="TLS certificate (provisioning)")
    tls_key_file: Path | None = Field(None, description="TLS private key (provisioning)")
    session_ttl_s: int = Field(8 * 3600, ge=60, le=24 * 3600, description="staff session life")
    max_login_failures: int = Field(5, ge=1, le=50,
                                    description="failed log-ins of one name from one screen "
                                                "before each further try waits (back-off, "
                                                "never a lock: the right password after the "
                                                "wait succeeds)")
    lockout_s: int = Field(300, ge=1, le=86400,
                           description="failed log-ins are forgotten after this long without "
                                       "another one")
    login_backoff_s: float = Field(1.0, ge=0.1, le=60,
                                   description="first back-off wait; it doubles with each "
                                               "further failure of that name from that screen")
    login_backoff_max_s: float = Field(60.0, ge=1, le=3600,
                                       description="longest back-off wait of one name from "
                                                   "one screen")
    login_name_slow_after: int = Field(20, ge=1, le=10000,
                                       description="failures of one name from all screens "
                                                   "together before every screen that got it "
                                                   "wrong waits before its next try")
    login_name_delay_max_s: float = Field(30.0, ge=1, le=3600,
                                          description="longest wait that slow-down of one name "
                                                      "imposes (a screen that has not failed "
                                                      "is never made to wait by it)")
    max_screens: int = Field(64, ge=1, le=4096,
                             description="kiosk screens (browser device cookies) remembered "
                                         "to tell screens on one address apart")
    new_screens_per_address: int = Field(8, ge=1, le=1000,
                                         description="device cookies one client address is "
                                                     "given per hour")
    extra_origins: list[str] = Field([], max_length=16,
                                     description="further origins (scheme://host:port) kiosk "
                                                 "pages are served from, besides host/port "
                                                 "and the certificate's names")
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                  description="largest photo upload")
    camera_source: VisibleSource | None = Field(
        None, description="kiosk camera for enrolment capture (a source table, as "
                          "capture.visible_source)")
    consent_ttl_s: int = Field(12 * 3600, ge=60, le=7 * 24 * 3600,
                               description="consent validity from grant")

    @field_validator("extra_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest \
                    or "@" in rest:
                raise ValueError(f"origin {origin!r}: write scheme://host[:port], e.g. "
                                 "https://kiosk.example:8443")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> KioskSettings:
        if self.login_backoff_max_s < self.login_backoff_s:
            raise ValueError("login_backoff_max_s must be at least login_backoff_s")
        return self
