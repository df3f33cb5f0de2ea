"""`init`: device layout, key modes, documented settings, refusal to overwrite, no secrets shown."""

from __future__ import annotations

import stat
import time
import tomllib
from pathlib import Path

import pytest
import zmq.auth
from helpers.provisioning import make_device, run_cli, secret_strings

from edge.consent.keys import read_key_file
from edge.consent.store import ConsentStore
from foundation.clock import FakeClock
from foundation.settings import Settings, SettingsError, load_settings, parse_settings
from provisioning import device as device_mod
from provisioning.device import DeviceLayout, init_device, open_device
from provisioning.errors import DeviceExistsError, DeviceNotFoundError
from provisioning.settings_toml import render_settings_toml
from provisioning.tls import certificate_days_left


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_and_modes(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    lay = dev.layout
    for secret in (lay.store_key, lay.ref_key, lay.device_secret_key, lay.tls_key):
        assert secret.is_file() and _mode(secret) == 0o600, secret
    assert _mode(lay.keys_dir) == 0o700
    assert len(read_key_file(lay.store_key)) == 32
    assert read_key_file(lay.store_key) != read_key_file(lay.ref_key)
    public, secret_z85 = zmq.auth.load_certificate(lay.device_secret_key)
    assert public and secret_z85 and len(public) == 40
    assert 800 < certificate_days_left(lay.tls_cert, time.time()) <= 825
    assert lay.store_db.is_file()
    assert not lay.central_public_key.exists()


def test_settings_point_at_the_device(tmp_path: Path) -> None:
    dev = make_device(tmp_path, gate_id="B12")
    s = load_settings(dev.layout.settings_file)
    assert s == dev.settings
    assert s.device.gate_id == "B12"
    assert s.device.data_dir == dev.layout.root
    assert s.store_path == dev.layout.store_db
    assert s.store_key_file == dev.layout.store_key
    assert s.hmac_secret_file == dev.layout.ref_key
    assert s.kiosk.tls_cert_file == dev.layout.tls_cert
    assert s.telemetry.device_secret_key_file == dev.layout.device_secret_key
    assert s.telemetry.central_public_key_file == dev.layout.central_public_key


def test_store_opens_with_the_provisioned_key(tmp_path: Path, fake_clock: FakeClock) -> None:
    dev = make_device(tmp_path)
    with ConsentStore.from_settings(dev.settings, fake_clock) as store:
        assert store.audit_log.verify() >= 0
        assert store.stats()["templates"] == 0


def test_device_id_is_pseudonymous(tmp_path: Path) -> None:
    a = make_device(tmp_path / "a", gate_id="B12").settings.device.device_id
    b = make_device(tmp_path / "b", gate_id="B12").settings.device.device_id
    assert a != b
    assert "B12" not in a and "b12" not in a.lower()


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    before = {p: p.read_bytes() for p in (dev.layout.store_key, dev.layout.store_db,
                                         dev.layout.settings_file)}
    with pytest.raises(DeviceExistsError, match="--force"):
        make_device(tmp_path)
    code, _out, err = run_cli(["init", "--dir", str(dev.layout.root), "--gate-id", "B12"])
    assert code == 1 and "already holds a device" in err
    assert {p: p.read_bytes() for p in before} == before


def test_force_replaces_with_new_keys(tmp_path: Path) -> None:
    old = make_device(tmp_path)
    old_key = old.layout.store_key.read_bytes()
    new = make_device(tmp_path, force=True)
    assert new.layout.store_key.read_bytes() != old_key
    assert new.settings.device.device_id != old.settings.device.device_id


def test_refuses_a_folder_with_just_a_store(tmp_path: Path) -> None:
    root = tmp_path / "dev"
    root.mkdir()
    (root / "store.db").write_bytes(b"x" * 4096)
    with pytest.raises(DeviceExistsError):
        init_device(root, "B12", model_dir=tmp_path)


def test_bad_gate_id_names_the_field(tmp_path: Path) -> None:
    code, _out, err = run_cli(["init", "--dir", str(tmp_path / "d"), "--gate-id", "X" * 40])
    assert code == 1 and "device.gate_id" in err
    assert not (tmp_path / "d" / "keys").exists()


def test_failure_part_way_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(device_mod, "write_self_signed", boom)
    with pytest.raises(OSError):
        make_device(tmp_path)
    assert DeviceLayout(tmp_path / "dev").existing_parts() == []
    monkeypatch.undo()
    make_device(tmp_path)  # and a plain rerun works


def test_cli_never_prints_a_secret(tmp_path: Path) -> None:
    root = tmp_path / "dev"
    code, out, err = run_cli(["init", "--dir", str(root), "--gate-id", "B12", "--model-dir",
                              str(tmp_path), "--log-level", "debug"])
    assert code == 0, err
    dev = open_device(root)
    assert dev.settings.device.device_id in out
    for secret in secret_strings(dev):
        assert secret not in out and secret not in err
    assert secret_strings(dev)  # the check above looked at something


def test_open_device_errors(tmp_path: Path) -> None:
    with pytest.raises(DeviceNotFoundError, match="provisioning init"):
        open_device(tmp_path)
    with pytest.raises(DeviceNotFoundError, match="--dir"):
        open_device()


# -- the generated settings file ----------------------------------------------------------------
def _fields(model, prefix: str = ""):
    for name, info in type(model).model_fields.items():
        yield f"{prefix}{name}", info


def test_every_field_is_documented(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    text = dev.layout.settings_file.read_text()
    lines = text.splitlines()
    s = dev.settings
    for section, _ in _fields(s):
        sub = getattr(s, section)
        assert f"[{section}]" in lines
        for name, info in _fields(sub):
            assert info.description, f"{section}.{name} has no description in the settings"
            hits = [i for i, ln in enumerate(lines)
                    if ln.startswith((f"{name} =", f"# {name} =", f"[[{section}.{name}]]"))]
            assert hits, f"{section}.{name} missing from settings.toml"
            described = any(info.description in ln for i in hits
                            for ln in lines[max(0, i - 2):i])
            assert described, f"{section}.{name} is not preceded by its description"


def test_render_round_trips(tmp_path: Path) -> None:
    default = Settings()
    assert parse_settings(tomllib.loads(render_settings_toml(default))) == default
    custom = parse_settings({
        "device": {"gate_id": "C3", "data_dir": str(tmp_path)},
        "lanes": {"lanes": [{"lane_id": "A", "zone": [[0, 0], [0.5, 0], [0.5, 0.25]]},
                            {"lane_id": "B", "zone": [[20, 0], [30, 0], [30, 10.5]],
                             "zone_resolution": [640, 480]}]},
        "gate": {"lanes": ["A", "B"], "driver": {"type": "serial_relay",
                                                  "serial_port": "/dev/ttyUSB0 \"quoted\""}},
        "capture": {"visible_source": {"type": "stream", "url": "rtsp://cam.local/1"}},
        "thermal": {"source": {"type": "v4l2", "device": 2}},
        "telemetry": {"laplace_epsilon": 0.5},
    })
    assert parse_settings(tomllib.loads(render_settings_toml(custom))) == custom


def test_init_overrides_are_validated(tmp_path: Path) -> None:
    dev = make_device(tmp_path, overrides={"telemetry": {"k_anonymity": 7}})
    assert load_settings(dev.layout.settings_file).telemetry.k_anonymity == 7
    with pytest.raises(SettingsError, match="k_anonymity"):
        make_device(tmp_path / "x", overrides={"telemetry": {"k_anonymity": 0}})


def test_refuses_a_file_as_folder(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, _out, err = run_cli(["init", "--dir", str(target), "--gate-id", "B12"])
    assert code == 1 and "is a file" in err
    assert target.read_text() == "x"


def test_next_steps_name_the_systemd_units(tmp_path: Path) -> None:
    code, out, err = run_cli(["init", "--dir", str(tmp_path / "dev"), "--gate-id", "B12",
                              "--model-dir", str(tmp_path)])
    assert code == 0, err
    steps = out.split("next:", 1)[1].splitlines()
    gate = next(i for i, s in enumerate(steps) if "enable --now consentgate-gate.service" in s)
    verify = next(i for i, s in enumerate(steps) if "provisioning verify" in s)
    daemon = next(i for i, s in enumerate(steps) if "enable --now consentgate.service" in s)
    assert gate < verify < daemon  # verify asks the controller; the daemon starts once fit
    # the units read the documented device folder's settings; a device elsewhere is told so
    assert "systemd units read /var/lib/consentgate/settings.toml" in out
