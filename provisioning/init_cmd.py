"""`init --dir DIR --gate-id ID`: provision a device folder (see provisioning.device).

Prints where each part went and the public parts only (device id, the device's Curve public
key); never a secret. Then the numbered next steps as exact commands, the systemd units of
deploy/systemd/ included (docs/install.md): the gate controller before `verify` (which asks
it), the daemon after it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from foundation.settings import DeviceSettings
from provisioning.common import console, progress_bar, start
from provisioning.device import SETTINGS_NAME, init_device
from provisioning.tls import certificate_names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, required=True, help="device folder to create")
    parser.add_argument("--gate-id", required=True, help="gate this box serves, e.g. B12")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing device (its store and keys are destroyed)")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="where install-models puts the models (default: "
                             "$CONSENTGATE_MODEL_DIR, else a source checkout's .models when "
                             "it has one, else /var/lib/consentgate/models)")
    parser.add_argument("--central-key", type=Path, default=None,
                        help="also import central's public key file")
    parser.add_argument("--kiosk-name", action="append", default=[], metavar="NAME",
                        help="DNS name or IP address kiosk screens use to reach this box, put "
                             "in the kiosk certificate beside localhost/127.0.0.1 (repeatable)")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    start(args)
    out = console()
    with progress_bar(out) as progress:
        task = progress.add_task("provisioning (keys, certificate, store)", total=None)
        device = init_device(args.dir, args.gate_id, force=args.force,
                             model_dir=args.model_dir, central_public_key=args.central_key,
                             kiosk_names=args.kiosk_name)
        progress.update(task, completed=1, total=1)
    lay = device.layout
    public = lay.device_public_key.read_text(encoding="utf-8")
    z85 = next((ln.split("=", 1)[1].strip().strip('"') for ln in public.splitlines()
                if ln.strip().startswith("public-key")), "?")
    out.print(f"device {device.settings.device.device_id} provisioned for gate "
              f"{device.settings.device.gate_id} in {lay.root}")
    out.print(f"  settings      {lay.settings_file}")
    out.print(f"  store         {lay.store_db} (SQLCipher, key in {lay.store_key})")
    out.print(f"  kiosk TLS     {lay.tls_cert} ({', '.join(certificate_names(lay.tls_cert))})")
    out.print(f"  device Curve public key (give to central): {z85}")
    s = device.settings
    cli, where = "python -m provisioning", f"--dir {lay.root}"
    steps = []
    if not (s.vision.model_dir / "fr_feature.onnx").exists():
        steps.append(f"{cli} install-models --model-dir {s.vision.model_dir}")
    if not lay.central_public_key.exists():
        steps.append(f"{cli} import-central-key FILE {where}")
    steps.append(f"{cli} add-staff NAME --role agent|supervisor|engineer {where}")
    if s.capture.visible_source.type == "synthetic":
        out.print(f"  cameras       the synthetic demo scene: for a real gate set "
                  f"capture.visible_source and thermal.source in {lay.settings_file.name}, "
                  "then run calibrate-thermal")
    unit_config = DeviceSettings().data_dir / SETTINGS_NAME  # deploy/systemd's --config
    if lay.settings_file != unit_config:
        out.print(f"  systemd units read {unit_config}: provision there for them, or change "
                  f"the --config of consentgate.service and consentgate-gate.service")
    steps.append("systemctl enable --now consentgate-gate.service   # the gate controller "
                 "(verify asks it)")
    steps.append(f"{cli} verify {where}")
    steps.append("systemctl enable --now consentgate.service   # the daemon, once verify is "
                 "fit (units and start order: docs/install.md)")
    out.print("next:")
    for n, step in enumerate(steps, 1):
        out.print(f"  {n}. {step}")
    return 0
