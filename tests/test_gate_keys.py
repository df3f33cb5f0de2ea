"""The gate link's keys: `init` makes them, `rotate-gate-keys` replaces them, `verify` checks
them, and the controller and its clients refuse to start without them (saying how to fix it)."""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

import pytest
import zmq.auth
from helpers.provisioning import make_device, run_cli

from foundation.settings import GateSettings, load_settings
from gate_controller.keys import (
    GATE_KEY_FIELDS,
    GateKeyError,
    client_keys,
    create_gate_keys,
    server_keys,
)
from provisioning.device import update_settings
from provisioning.gate_keys import check_gate_keys, rotate_gate_keys


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _public(path: Path) -> bytes:
    public, _ = zmq.auth.load_certificate(path)
    assert public is not None
    return public


class _Ctx:
    def __init__(self, device) -> None:
        self.device = device


def test_init_makes_the_gate_keys_and_points_the_settings_at_them(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    gs = load_settings(dev.settings_file).gate
    assert {f: getattr(gs, f) for f in GATE_KEY_FIELDS} == dev.layout.gate_key_files
    for field in GATE_KEY_FIELDS:
        path = getattr(gs, field)
        assert path.is_file() and path.parent == dev.layout.keys_dir and _mode(path) == 0o600
    keys = server_keys(gs)
    assert sorted(keys.peers.values()) == ["daemon", "operator"]
    assert client_keys(gs, "daemon").server == keys.public
    assert client_keys(gs, "operator").public in keys.peers
    assert [r.status for r in check_gate_keys(_Ctx(dev))] == ["pass"] * 3


def test_rotate_gate_keys_replaces_all_three_and_says_restart(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    gs = dev.settings.gate
    before = {f: getattr(gs, f).read_bytes() for f in GATE_KEY_FIELDS}
    code, out, err = run_cli(["rotate-gate-keys", "--dir", str(dev.layout.root)])
    assert code == 0, err
    assert "restart the gate controller" in out and "daemon" in out
    for field in GATE_KEY_FIELDS:
        path = getattr(gs, field)
        assert path.read_bytes() != before[field] and _mode(path) == 0o600
    assert not list(dev.layout.keys_dir.glob("*.new"))
    assert not list(dev.layout.keys_dir.glob(".gate-keys-*"))
    secret_line = next(ln for ln in before["daemon_secret_key_file"].decode().splitlines()
                       if "secret-key" in ln)
    assert secret_line.split("=", 1)[1].strip().strip('"') not in out + err  # no secret shown
    assert [r.status for r in check_gate_keys(_Ctx(dev))] == ["pass"] * 3
    server_keys(gs)  # the new set loads


def test_rotate_repoints_a_device_provisioned_before_gate_keys(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    for f in dev.layout.gate_key_files.values():
        f.unlink()
    # an old settings file: no gate key files named, so the defaults of /var/lib/consentgate
    defaults = GateSettings()
    old = update_settings(dev, {"gate": {f: str(getattr(defaults, f)) for f in GATE_KEY_FIELDS}})
    with pytest.raises(GateKeyError, match="rotate-gate-keys"):
        server_keys(old.settings.gate)
    new, files = rotate_gate_keys(old)
    assert files == dev.layout.gate_key_files
    reread = tomllib.loads(dev.settings_file.read_text())["gate"]
    assert reread["daemon_secret_key_file"] == str(files["daemon_secret_key_file"])
    assert load_settings(dev.settings_file).gate == new.settings.gate
    server_keys(new.settings.gate)


@pytest.mark.parametrize("damage", ["missing", "mode", "secret_as_public", "mismatch",
                                    "same_role_keys", "not_a_key"])
def test_verify_rows_fail_on_wrong_gate_keys(tmp_path: Path, damage: str) -> None:
    dev = make_device(tmp_path)
    gs = dev.settings.gate
    if damage == "missing":
        gs.operator_public_key_file.unlink()
    elif damage == "mode":
        os.chmod(gs.daemon_secret_key_file, 0o644)
    elif damage == "secret_as_public":
        gs.daemon_public_key_file.write_bytes(gs.daemon_secret_key_file.read_bytes())
    elif damage == "mismatch":
        other = create_gate_keys(tmp_path / "other")
        gs.controller_public_key_file.write_bytes(
            other["controller_public_key_file"].read_bytes())
    elif damage == "same_role_keys":
        for field in ("operator_secret_key_file", "operator_public_key_file"):
            daemon_field = field.replace("operator", "daemon")
            getattr(gs, field).write_bytes(getattr(gs, daemon_field).read_bytes())
    else:
        gs.controller_secret_key_file.write_text("not a key\n")
    rows = check_gate_keys(_Ctx(dev))
    failed = [r for r in rows if r.status == "fail"]
    assert len(failed) == 1, rows
    assert "rotate-gate-keys" in failed[0].fix and "restart" in failed[0].fix
    if damage == "secret_as_public":
        assert "SECRET" in failed[0].detail


def test_verify_lists_the_gate_key_rows(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    _code, out, _ = run_cli(["verify", "--dir", str(dev.layout.root), "--only", "keys",
                             "--json"])
    report = json.loads(out.strip().splitlines()[-1])
    names = {r["name"]: r["status"] for r in report["results"]}
    for role in ("controller", "daemon", "operator"):
        assert names[f"key: gate {role}"] == "pass"


def test_the_controller_refuses_mixed_up_role_keys(tmp_path: Path) -> None:
    files = create_gate_keys(tmp_path)
    gs = GateSettings(**{**files, "operator_public_key_file": files["daemon_public_key_file"]})
    with pytest.raises(GateKeyError, match="same public key"):
        server_keys(gs)
    with pytest.raises(GateKeyError, match=r"provisioning init"):
        client_keys(GateSettings(**{**files, "controller_public_key_file": tmp_path / "no"}))
    with pytest.raises(ValueError):
        client_keys(gs, "root")  # type: ignore[arg-type]


def test_default_endpoints_are_private_ipc_sockets() -> None:
    gs = GateSettings()
    for endpoint in (gs.command_endpoint, gs.event_endpoint, gs.sim_control_endpoint):
        assert endpoint.startswith("ipc:///run/consentgate/gate-")
