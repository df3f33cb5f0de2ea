"""The base of every settings section: frozen, unknown keys refused; the settings error."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from foundation.errors import ConsentGateError


class SettingsError(ConsentGateError):
    """The settings file is missing, not TOML, or has a bad value."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
