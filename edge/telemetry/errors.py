"""Telemetry's operator-facing exceptions."""

from __future__ import annotations

from edge.errors import ConsentGateError


class TelemetryError(ConsentGateError):
    """Base of the telemetry room's errors."""


class UnknownCountField(TelemetryError):
    """A caller named a count field that is not in COUNT_FIELDS."""


class KeyFileError(TelemetryError):
    """A CurveZMQ key file is missing, unreadable or of the wrong kind."""


class SchemaError(TelemetryError):
    """A message does not follow its declared schema (or declares an unknown one)."""
