"""A provisioned device folder: its layout, `init_device` that creates one, `open_device`.

Layout written by `init` (other rooms rely on it):

    DIR/settings.toml                    every field documented (generated from the model)
    DIR/keys/store.key, keys/ref.key     SQLCipher key and reference-hash HMAC secret (0600)
    DIR/keys/device.key(+_secret)        CurveZMQ keypair, zmq.auth format
    DIR/keys/central.key                 central's Curve public key (import-central-key)
    DIR/keys/gate-controller.key(+_secret), gate-daemon.key(+_secret),
        gate-operator.key(+_secret)      the gate link's CurveZMQ keypairs (rotate-gate-keys)
    DIR/tls/kiosk.crt, tls/kiosk.key     self-signed kiosk certificate
    DIR/store.db                         the encrypted consent store, created empty

The device id is pseudonymous: random, unrelated to the gate id or the hardware.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from foundation.clock import Clock, SystemClock
from foundation.curve_keys import read_key_file
from foundation.settings import Settings, load_settings, parse_settings
from provisioning.errors import (
    CentralKeyError,
    DeviceExistsError,
    DeviceNotFoundError,
    ProvisioningError,
)
from provisioning.settings_toml import render_settings_toml
from provisioning.shred import shred_file, shred_tree
from provisioning.tls import kiosk_names as cert_hosts
from provisioning.tls import write_self_signed

log = structlog.get_logger(__name__)

SETTINGS_NAME = "settings.toml"


@dataclass(frozen=True)
class DeviceLayout:
    """Where each part of a device lives, relative to its folder."""

    root: Path

    @property
    def settings_file(self) -> Path:
        return self.root / SETTINGS_NAME

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def store_key(self) -> Path:
        return self.keys_dir / "store.key"

    @property
    def ref_key(self) -> Path:
        return self.keys_dir / "ref.key"

    @property
    def device_public_key(self) -> Path:
        return self.keys_dir / "device.key"

    @property
    def device_secret_key(self) -> Path:
        return self.keys_dir / "device.key_secret"

    @property
    def central_public_key(self) -> Path:
        return self.keys_dir / "central.key"

    @property
    def gate_key_files(self) -> dict[str, Path]:
        """[gate] settings field -> the device's gate key file (gate_controller.keys)."""
        from gate_controller.keys import key_files

        return key_files(self.keys_dir)

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def tls_cert(self) -> Path:
        return self.tls_dir / "kiosk.crt"

    @property
    def tls_key(self) -> Path:
        return self.tls_dir / "kiosk.key"

    @property
    def store_db(self) -> Path:
        return self.root / "store.db"

    def existing_parts(self) -> list[Path]:
        """Parts of a device already present (an empty folder has none)."""
        parts = [self.settings_file, self.keys_dir, self.tls_dir, self.store_db]
        return [p for p in parts if p.exists()]


@dataclass(frozen=True)
class Device:
    """A provisioned device: its folder layout and its validated settings."""

    layout: DeviceLayout
    settings: Settings
    settings_file: Path


def new_device_id() -> str:
    """A pseudonymous device id: random, says nothing about the gate or the hardware."""
    return "cg-" + secrets.token_hex(8)


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def device_settings(layout: DeviceLayout, gate_id: str, device_id: str,
                    model_dir: Path | None = None,
                    overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings a freshly provisioned device starts with (validated)."""
    base = Settings().model_dump(mode="python", exclude_none=True)
    data: dict[str, Any] = _deep_merge(base, {
        "device": {"device_id": device_id, "gate_id": gate_id, "data_dir": layout.root},
        "telemetry": {"device_secret_key_file": layout.device_secret_key,
                      "central_public_key_file": layout.central_public_key},
        "gate": layout.gate_key_files,
        "kiosk": {"tls_cert_file": layout.tls_cert, "tls_key_file": layout.tls_key},
    })
    if model_dir is not None:
        data["vision"]["model_dir"] = Path(model_dir).resolve()
    if overrides:
        data = _deep_merge(data, overrides)
    return parse_settings(data)


def write_settings(path: Path, settings: Settings) -> None:
    """Write the documented settings TOML atomically (0640)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_settings_toml(settings))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _mkdir_private(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _remove_parts(layout: DeviceLayout) -> None:
    """Shred whatever parts of a (possibly half-made) device exist."""
    for d in (layout.keys_dir, layout.tls_dir):
        shred_tree(d)
    for f in store_files(layout.store_db):
        shred_file(f)
    shred_file(layout.settings_file)


def store_files(store_db: Path) -> list[Path]:
    """The store file and SQLite's side files (journal, WAL, shared memory)."""
    return [store_db] + [store_db.with_name(store_db.name + s)
                         for s in ("-journal", "-wal", "-shm")]


def init_device(root: Path | str, gate_id: str, *, force: bool = False,
                model_dir: Path | None = None, central_public_key: Path | None = None,
                overrides: Mapping[str, Any] | None = None,
                clock: Clock | None = None, kiosk_names: Sequence[str] = ()) -> Device:
    """Provision a device in `root`: identity, keys, TLS certificate, settings, empty store.

    Refuses (DeviceExistsError) when `root` already holds a device, unless `force`, which shreds
    the old device first. A failure part-way removes what was made, so it can simply be rerun.
    `overrides` are settings sections merged over the defaults (validated like the file).
    `kiosk_names` (DNS names or IP addresses kiosk screens use to reach the box) go into the
    kiosk certificate beside localhost and 127.0.0.1; a malformed one raises KioskNameError
    before anything is written.
    """
    from edge.consent.keys import write_key_file
    from foundation.curve_keys import create_keypair
    from gate_controller.keys import create_gate_keys

    clock = clock or SystemClock()
    hosts = cert_hosts(kiosk_names)  # KioskNameError: nothing written yet
    layout = DeviceLayout(Path(root).resolve())
    if layout.root.exists() and not layout.root.is_dir():
        raise ProvisioningError(f"{layout.root} is a file, not a folder: pick another --dir")
    existing = layout.existing_parts()
    if existing and not force:
        raise DeviceExistsError(
            f"{layout.root} already holds a device ({', '.join(p.name for p in existing)}); "
            "use `wipe` to decommission it, or `init --force` to replace it (its store and "
            "keys are destroyed)")
    if existing:
        log.warning("device_replaced", parts=len(existing))
        _remove_parts(layout)

    device_id = new_device_id()
    settings = device_settings(layout, gate_id, device_id, model_dir, overrides)
    try:
        _mkdir_private(layout.root)
        _mkdir_private(layout.keys_dir)
        _mkdir_private(layout.tls_dir)
        write_key_file(layout.store_key)
        write_key_file(layout.ref_key)
        create_keypair(layout.keys_dir, "device")
        os.chmod(layout.device_secret_key, 0o600)
        create_gate_keys(layout.keys_dir)
        write_self_signed(layout.tls_cert, layout.tls_key, common_name=f"kiosk-{device_id}",
                          now=clock.now(), hosts=hosts)
        write_settings(layout.settings_file, settings)
        _create_store(settings, clock)
        if central_public_key is not None:
            import_central_key(layout, Path(central_public_key))
    except PermissionError as exc:
        _remove_parts(layout)
        raise ProvisioningError(f"no permission to write {exc.filename}: run init as the "
                                "service user or choose a --dir you own") from None
    except BaseException:
        _remove_parts(layout)
        raise
    log.info("device_provisioned", device_id=device_id)
    return Device(layout, settings, layout.settings_file)


def _create_store(settings: Settings, clock: Clock) -> None:
    from edge.consent.store import ConsentStore

    store = ConsentStore.open(settings.store_path, settings.store_key_file,
                              settings.hmac_secret_file, clock, create=True)
    store.close()


def open_device(root: Path | str | None = None, config: Path | str | None = None) -> Device:
    """The device at folder `root` or settings file `config` (validated), or a clear error."""
    if config is not None:
        path = Path(config)
    elif root is not None:
        path = Path(root) / SETTINGS_NAME
    else:
        raise DeviceNotFoundError("say which device: pass --dir DIR (the folder `init` made) "
                                  "or --config FILE")
    if not path.is_file():
        raise DeviceNotFoundError(f"no provisioned device at {path.parent} ({path.name} is "
                                  "missing): run `python -m provisioning init --dir DIR "
                                  "--gate-id ID` first")
    settings = load_settings(path)
    return Device(DeviceLayout(Path(settings.device.data_dir).resolve()), settings, path)


def copy_private(src: Path, dst: Path) -> None:
    """Copy a file to `dst` with mode 0600 (via a temp file and an atomic rename)."""
    tmp = dst.with_name(dst.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dst)


def update_settings(device: Device, patch: Mapping[str, Any]) -> Device:
    """Merge `patch` into the device's settings, validate, and rewrite its settings file."""
    data = _deep_merge(device.settings.model_dump(mode="python", exclude_none=True), patch)
    settings = parse_settings(data)
    write_settings(device.settings_file, settings)
    return Device(device.layout, settings, device.settings_file)


def check_public_key_file(path: Path) -> bytes:
    """Central's public key (Z85) from a zmq.auth file, or CentralKeyError saying why not."""
    public, secret = read_key_file(
        path, error=CentralKeyError,
        missing="copy central's public key file (central.key, not central.key_secret) onto "
                "this box first",
        unreadable="ask central for its public key file in zmq.auth format again")
    if secret is not None:
        raise CentralKeyError(f"{path} holds a SECRET key: never copy central's secret to a "
                              "gate; import its public key file (central.key) instead")
    if public is None:
        raise CentralKeyError(f"{path} has no valid public key: ask central for its public "
                              "key file in zmq.auth format")
    return public


def import_central_key(layout: DeviceLayout, source: Path) -> Path:
    """Validate `source` and install it as the device's central.key; returns the path."""
    check_public_key_file(source)
    layout.keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    copy_private(source, layout.central_public_key)
    log.info("central_key_imported")
    return layout.central_public_key
