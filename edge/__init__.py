"""consentgate edge daemon: capture, vision, screening, consent store, lanes, telemetry, kiosk."""

__version__ = "0.1.0"
