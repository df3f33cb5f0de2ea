"""Operator-facing errors of the provisioning CLI; each message says what to do next."""

from __future__ import annotations

from foundation.errors import ConsentGateError


class ProvisioningError(ConsentGateError):
    """Base of every provisioning failure."""


class DeviceExistsError(ProvisioningError):
    """`init` found an existing device and was not told to replace it."""


class DeviceNotFoundError(ProvisioningError):
    """No provisioned device at the folder or settings file given."""


class CentralKeyError(ProvisioningError):
    """The central public key file is missing, malformed, or a secret key."""


class StaffError(ProvisioningError):
    """A staff account could not be added (bad name, role or password)."""


class RotationError(ProvisioningError):
    """Key rotation failed; the store still opens with the key it had."""


class WipeRefusedError(ProvisioningError):
    """Wipe was not confirmed."""


class CalibrationError(ProvisioningError):
    """Thermal captures were unusable for calibration."""


class KioskNameError(ProvisioningError):
    """A --kiosk-name is neither a DNS name nor an IP address."""


class KioskCertError(ProvisioningError):
    """The kiosk certificate could not be renewed (the old one is kept)."""
