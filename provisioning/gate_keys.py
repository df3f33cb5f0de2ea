"""`rotate-gate-keys`: new CurveZMQ keypairs for the gate link (controller, daemon, operator).

The gate controller admits only the daemon's public key (every command) and the operator's
(`status` only); `init` makes the three keypairs, this command replaces them (a suspected leak,
a box changing hands, or a device provisioned before the gate link was authenticated). New
keys are written beside the old ones (`.new`, 0600) in the keys folder, then the old secrets
are shredded and the new files moved into place. A device whose settings name no gate key files
of its own gets its keys folder's files, and its settings are updated to say so.

Both processes read the keys only at start: restart the gate controller and then the daemon.
Until both have restarted the daemon cannot reach the controller and the lanes stay manual.

`check_gate_keys` is the self-test's part (`verify`, key rows): every file present, owner-only,
of the right kind (a secret file holds a secret, a public file holds no secret) and the pairs
matching, the daemon's and the operator's keys distinct.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import zmq.auth

from foundation.settings import GateSettings
from provisioning.common import add_device_args, console, device_from_args, start
from provisioning.device import Device, copy_private, update_settings
from provisioning.shred import shred_file

if TYPE_CHECKING:
    from provisioning.checks.result import CheckResult, VerifyContext

log = structlog.get_logger(__name__)

RESTART = ("restart the gate controller, then the daemon (`systemctl restart consentgate-gate "
           "consentgate`): both read the gate keys only at start, and until both have "
           "restarted the lanes stay manual")
ROTATE = "python -m provisioning rotate-gate-keys --dir DIR"
# role -> (secret field, public field) in [gate]
PAIRS = {"controller": ("controller_secret_key_file", "controller_public_key_file"),
         "daemon": ("daemon_secret_key_file", "daemon_public_key_file"),
         "operator": ("operator_secret_key_file", "operator_public_key_file")}


def gate_key_targets(device: Device) -> tuple[dict[str, Path], bool]:
    """Where the gate keys go: the settings' files, or (when the settings still name the
    defaults of another folder) the device's keys folder; and whether settings must change."""
    gs = device.settings.gate
    defaults = GateSettings()
    mine = device.layout.gate_key_files
    named = {field: Path(getattr(gs, field)) for field in mine}
    if all(named[f] == getattr(defaults, f) for f in mine) and named != mine:
        return mine, True
    return named, False


def rotate_gate_keys(device: Device) -> tuple[Device, dict[str, Path]]:
    """Replace the three gate keypairs; (the device, with settings updated if needed, files)."""
    from gate_controller.keys import CONTROLLER, DAEMON, OPERATOR

    targets, repoint = gate_key_targets(device)
    names = {"controller": CONTROLLER, "daemon": DAEMON, "operator": OPERATOR}
    for path in targets.values():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".gate-keys-", dir=targets["daemon_secret_key_file"]
                                 .parent))
    staged: list[tuple[Path, Path]] = []  # (new file beside the target, target)
    try:
        from foundation.curve_keys import create_keypair

        for role, (secret_field, public_field) in PAIRS.items():
            public, secret = create_keypair(work, names[role])
            for made, field in ((secret, secret_field), (public, public_field)):
                target = targets[field]
                new = target.with_name(target.name + ".new")
                copy_private(made, new)
                staged.append((new, target))
        for new, target in staged:  # every new file is in place: now swap them in
            if target.name.endswith("_secret"):
                shred_file(target)
            os.replace(new, target)
    except BaseException:
        for new, _ in staged:
            shred_file(new)
        raise
    finally:
        for leftover in work.glob("*"):
            shred_file(leftover)
        shutil.rmtree(work, ignore_errors=True)
    if repoint:
        device = update_settings(device, {"gate": {f: str(p) for f, p in targets.items()}})
    log.info("gate_keys_rotated", repointed=repoint)
    return device, targets


# -- the self-test's rows --------------------------------------------------------------------
def _keys_of(path: Path) -> tuple[bytes | None, bytes | None]:
    public, secret = zmq.auth.load_certificate(path)
    for key in (public, secret):
        if key is not None and len(key) != 40:
            raise ValueError("malformed key")
    return public, secret


def _pair_problem(secret_file: Path, public_file: Path) -> tuple[str, bytes | None]:
    """What is wrong with one keypair's two files ('' when nothing), and its public key."""
    for path in (secret_file, public_file):
        if not path.is_file():
            return f"{path} is missing", None
    mode = stat.S_IMODE(secret_file.stat().st_mode)
    if mode & 0o077:
        return f"{secret_file} has mode {mode:04o} (chmod 600 {secret_file})", None
    try:
        public, secret = _keys_of(secret_file)
        public_only, leaked = _keys_of(public_file)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        return f"not a CurveZMQ key file ({exc})", None
    if public is None or secret is None:
        return f"{secret_file} holds no secret key", None
    if leaked is not None:
        return f"{public_file} holds a SECRET key: it must be the public file", None
    if public_only != public:
        return f"{public_file} is not the public half of {secret_file.name}", None
    return "", public


def check_gate_keys(ctx: VerifyContext) -> list[CheckResult]:
    """One row per gate keypair (controller, daemon, operator)."""
    from provisioning.checks.result import CheckResult

    gs = ctx.device.settings.gate
    fix = f"run `{ROTATE}`, then {RESTART}"
    out: list[CheckResult] = []
    seen: dict[bytes, str] = {}
    for role, (secret_field, public_field) in PAIRS.items():
        name = f"key: gate {role}"
        problem, public = _pair_problem(getattr(gs, secret_field), getattr(gs, public_field))
        if not problem and public is not None and public in seen:
            problem = f"the {role} key is the {seen[public]} key: every role needs its own"
        if problem:
            out.append(CheckResult(name, "fail", problem, fix))
            continue
        assert public is not None
        seen[public] = role
        out.append(CheckResult(name, "pass", "CurveZMQ keypair present, secret mode 0600, "
                                             "public file matches"))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Makes new keypairs for the gate controller, the daemon and the operator "
                     "and shreds the old secrets. Afterwards " + RESTART + ".")
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    device, files = rotate_gate_keys(device)
    out = console()
    out.print(f"new gate keys in {files['daemon_secret_key_file'].parent} (controller, daemon, "
              "operator); the old secrets are shredded")
    out.print(f"  settings      {device.settings_file}")
    out.print(RESTART)
    return 0
