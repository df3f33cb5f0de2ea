"""Command table of the provisioning CLI; each command lives in its own module."""

from __future__ import annotations

from collections.abc import Sequence

from foundation.cli import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "install-models": ("provisioning.install_models", "install and verify the pinned models"),
    "init": ("provisioning.init_cmd", "provision a device folder: identity, keys, TLS, settings"),
    "import-central-key": ("provisioning.central_key", "install central's Curve public key"),
    "add-staff": ("provisioning.staff", "add or update a kiosk staff account (password prompted)"),
    "list-staff": ("provisioning.staff_list", "list the kiosk staff accounts"),
    "disable-staff": ("provisioning.staff_disable", "disable (or --enable) a kiosk staff account"),
    "unlock-staff": ("provisioning.staff_unlock", "clear a staff account's failed log-ins "
                     "(through the running daemon)"),
    "calibrate-thermal": ("provisioning.calibrate_cmd", "fit the thermal calibration from "
                          "captures of the target and blackbody"),
    "rotate-key": ("provisioning.rotate", "re-encrypt the store under a fresh key"),
    "rotate-gate-keys": ("provisioning.gate_keys", "new CurveZMQ keys for the gate link "
                         "(controller, daemon, operator); restart both afterwards"),
    "renew-kiosk-cert": ("provisioning.kiosk_cert", "replace the kiosk TLS certificate and key "
                         "(names: --kiosk-name)"),
    "wipe": ("provisioning.wipe", "securely decommission: store, keys, models"),
    "verify": ("provisioning.verify", "self-test: pass/fail table with fixes; exit 0 when fit"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("python -m provisioning", COMMANDS, argv)
