"""Field provisioning: device identity and keys, models, calibration, staff, self-test, wipe."""
