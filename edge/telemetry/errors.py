"""Telemetry's operator-facing exceptions."""

from __future__ import annotations

from foundation.errors import ConsentGateError


class TelemetryError(ConsentGateError):
    """Base of the telemetry room's errors."""


class UnknownCountField(TelemetryError):
    """A caller named a count field that is not in COUNT_FIELDS."""

