"""`rotate-key` keeps the daemon's data and kills the old key; `wipe` leaves nothing readable."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers.consent import StoreHolder
from helpers.provisioning import FakeStdin, make_device, run_cli

from edge.consent.errors import StoreBusyError, StoreOpenError
from edge.consent.keys import write_key_file
from edge.consent.store import ConsentStore
from edge.kiosk.passwords import hash_password
from foundation.clock import FakeClock
from provisioning.device import Device
from provisioning.errors import RotationError, WipeRefusedError
from provisioning.rotate import rotate_store_key
from provisioning.shred import shred_file
from provisioning.wipe import confirm, wipe_device


def _populate(dev: Device, clock: FakeClock) -> tuple[str, np.ndarray]:
    """Daemon-like data: a staff account, a consent with a template, audit rows."""
    rng = np.random.default_rng(3)
    vec = rng.normal(size=512).astype(np.float32)
    vec /= np.linalg.norm(vec)
    with ConsentStore.from_settings(dev.settings, clock) as store:
        store.staff.upsert("agent7", "agent", hash_password("a long enough password"))
        consent = store.grant_consent("PNR123", "boarding", "BA117", clock.now() + 3600, "agent7")
        store.enrol(consent.consent_id, [vec], "fr_feature", "agent7")
    return consent.consent_id, vec


def _snapshot(dev: Device, clock: FakeClock, key_file: Path | None = None):
    s = dev.settings
    with ConsentStore.open(s.store_path, key_file or s.store_key_file, s.hmac_secret_file,
                           clock) as store:
        rows = store.active_templates()
        stats = {k: v for k, v in store.stats().items() if k != "audit_rows"}  # audit grows
        return (stats, [(r.consent_id, r.vector.tobytes()) for r in rows],
                store.staff.get("agent7"), store.audit_log.verify())


def test_rotation_keeps_data_and_kills_old_key(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    consent_id, vec = _populate(dev, clock)
    stats, templates, staff, audit_rows = _snapshot(dev, clock)
    old_key = tmp_path / "old.key"
    old_key.write_bytes(dev.layout.store_key.read_bytes())
    os.chmod(old_key, 0o600)

    code, _out, err = run_cli(["rotate-key", "--dir", str(dev.layout.root)])
    assert code == 0, err
    assert dev.layout.store_key.read_bytes() != old_key.read_bytes()
    assert not dev.layout.store_key.with_name("store.key.new").exists()
    stats2, templates2, staff2, audit2 = _snapshot(dev, clock)
    assert stats2 == stats and templates2 == templates and staff2 == staff
    assert templates2 == [(consent_id, vec.astype("<f4").tobytes())]
    assert audit2 == audit_rows + 1  # the rotation itself is audited
    with pytest.raises(StoreOpenError):
        _snapshot(dev, clock, key_file=old_key)


def test_interrupted_rotation_before_rekey_keeps_old_key(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    _populate(dev, clock)
    before = _snapshot(dev, clock)
    stray = dev.layout.store_key.with_name("store.key.new")
    write_key_file(stray)  # crash after writing the new key, before the rekey
    report = rotate_store_key(dev, clock)
    assert report.recovered
    assert not stray.exists()
    after = _snapshot(dev, clock)
    assert after[:3] == before[:3]


def test_interrupted_rotation_after_rekey_finishes(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    _populate(dev, clock)
    before = _snapshot(dev, clock)
    new = dev.layout.store_key.with_name("store.key.new")
    write_key_file(new)
    with ConsentStore.from_settings(dev.settings, clock) as store:
        store.rekey(new)  # crash after the rekey, before the old key was replaced
    report = rotate_store_key(dev, clock)
    assert report.recovered and not new.exists()
    assert _snapshot(dev, clock)[:3] == before[:3]


def test_rotation_refused_with_wrong_key_changes_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    _populate(dev, clock)
    shred_file(dev.layout.store_key)
    write_key_file(dev.layout.store_key)  # not the store's key
    key_bytes = dev.layout.store_key.read_bytes()
    store_bytes = dev.layout.store_db.read_bytes()
    code, _out, err = run_cli(["rotate-key", "--dir", str(dev.layout.root)])
    assert code == 1 and "key" in err
    assert dev.layout.store_key.read_bytes() == key_bytes
    assert dev.layout.store_db.read_bytes() == store_bytes
    assert not dev.layout.store_key.with_name("store.key.new").exists()


def test_unresolvable_leftover_is_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    shred_file(dev.layout.store_key)
    write_key_file(dev.layout.store_key)
    write_key_file(dev.layout.store_key.with_name("store.key.new"))
    with pytest.raises(RotationError, match="backup"):
        rotate_store_key(dev, clock)


# -- wipe ---------------------------------------------------------------------------------------
def _fake_models(dev: Device) -> list[Path]:
    model_dir = dev.settings.vision.model_dir
    files = [model_dir / "fr_feature.onnx", model_dir / "fr_detect.onnx"]
    for f in files:
        f.write_bytes(b"ONNX-MODEL-BYTES" * 100)
    return files


def test_wipe_leaves_nothing_readable(tmp_path: Path) -> None:
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    _populate(dev, clock)
    models = _fake_models(dev)
    (dev.layout.root / "thermal-calibration.json").write_text("{}")
    # Hard links see the same inode: after a shred they must read random bytes, not data.
    spies = {}
    for i, f in enumerate([dev.layout.store_key, dev.layout.store_db, dev.layout.tls_key,
                           models[0]]):
        spy = tmp_path / f"spy{i}"
        os.link(f, spy)
        spies[spy] = f.read_bytes()
    code, _out, err = run_cli(["wipe", "--yes", "--models", "--dir", str(dev.layout.root)])
    assert code == 0, err
    assert not dev.layout.root.exists()
    assert not any(m.exists() for m in models)
    for spy, original in spies.items():
        now = spy.read_bytes()
        assert len(now) == len(original)
        assert now != original
        # random bytes share at most a tiny fraction of positions with the original
        same = np.count_nonzero(np.frombuffer(now, np.uint8) == np.frombuffer(original, np.uint8))
        assert same < len(original) * 0.02 + 8
    assert b"ONNX-MODEL-BYTES" not in (tmp_path / "spy3").read_bytes()


def test_wipe_keeps_models_unless_asked(tmp_path: Path) -> None:
    """The model folder may be shared by other devices on the box: only --models shreds it."""
    dev = make_device(tmp_path)
    models = _fake_models(dev)
    before = {m: m.read_bytes() for m in models}
    code, out, err = run_cli(["wipe", "--yes", "--dir", str(dev.layout.root)])
    assert code == 0, err
    assert {m: m.read_bytes() for m in models} == before and not dev.layout.root.exists()
    assert f"models kept in {dev.settings.vision.model_dir}" in out
    dev = make_device(tmp_path / "again")  # the old flag still works (and is the default)
    models = _fake_models(dev)
    code, _out, err = run_cli(["wipe", "--yes", "--keep-models", "--dir", str(dev.layout.root)])
    assert code == 0, err
    assert all(m.exists() for m in models) and not dev.layout.root.exists()
    code, _out, err = run_cli(["wipe", "--yes", "--keep-models", "--models", "--dir",
                               str(dev.layout.root)])
    assert code == 2  # argparse: not both


def test_wipe_keeps_a_model_folder_inside_the_device_folder(tmp_path: Path) -> None:
    """The documented box layout: /var/lib/consentgate/models inside the device folder."""
    root = tmp_path / "dev"  # make_device's device folder
    (root / "models").mkdir(parents=True)
    dev = make_device(tmp_path, model_dir=root / "models")
    assert dev.layout.root == root.resolve()
    models = _fake_models(dev)
    (root / "thermal-calibration.json").write_text("{}")
    code, _out, err = run_cli(["wipe", "--yes", "--dir", str(root)])
    assert code == 0, err
    assert all(m.exists() for m in models)
    assert sorted(p.name for p in root.iterdir()) == ["models"]  # nothing of the device left
    dev = make_device(tmp_path, model_dir=root / "models")  # provision again, then --models
    code, _out, err = run_cli(["wipe", "--yes", "--models", "--dir", str(root)])
    assert code == 0, err
    assert not root.exists()


def test_wipe_needs_confirmation_in_scripts(tmp_path: Path, monkeypatch) -> None:
    dev = make_device(tmp_path)
    code, _out, err = run_cli(["wipe", "--dir", str(dev.layout.root)], stdin="",
                              monkeypatch=monkeypatch)
    assert code == 1 and "--yes" in err
    assert dev.layout.store_key.exists() and dev.layout.store_db.exists()


def test_wipe_confirmation_on_a_terminal(tmp_path: Path, capsys) -> None:
    dev = make_device(tmp_path)
    with pytest.raises(WipeRefusedError, match="did not match"):
        confirm(dev, yes=False, stdin=FakeStdin("B12\n", tty=True))
    assert dev.layout.store_key.exists()
    confirm(dev, yes=False, stdin=FakeStdin(dev.settings.device.device_id + "\n", tty=True))
    assert "but not the model files" in capsys.readouterr().out
    wipe_device(dev)
    assert not dev.layout.root.exists()


def _device_bytes(dev: Device) -> dict[Path, bytes]:
    """Every file of the device folder and the models, byte for byte (the lock file aside)."""
    files = [p for p in dev.layout.root.rglob("*") if p.is_file() and p.suffix != ".lock"]
    files += [p for p in dev.settings.vision.model_dir.iterdir() if p.is_file()]
    return {p: p.read_bytes() for p in sorted(files)}


def test_rotate_and_wipe_refuse_while_the_daemon_holds_the_store(tmp_path: Path,
                                                                  monkeypatch) -> None:
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    _populate(dev, clock)
    _fake_models(dev)
    s = dev.settings
    with StoreHolder(s.store_path, s.store_key_file, s.hmac_secret_file) as daemon:
        before = _device_bytes(dev)
        code, out, err = run_cli(["rotate-key", "--dir", str(dev.layout.root)])
        assert code == 1, out
        assert "in use by the daemon or another tool" in err and f"process {daemon.pid}" in err
        assert "systemctl stop consentgate" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1  # one line, says what to do
        with pytest.raises(StoreBusyError):
            rotate_store_key(dev, clock)
        assert not dev.layout.store_key.with_name("store.key.new").exists()
        # wipe refuses before it even asks for the device id, with --yes or without
        code, out, err = run_cli(["wipe", "--yes", "--dir", str(dev.layout.root)])
        assert code == 1 and "systemctl stop consentgate" in err, (out, err)
        code, out, err = run_cli(["wipe", "--dir", str(dev.layout.root)],
                                 stdin=dev.settings.device.device_id + "\n",
                                 monkeypatch=monkeypatch)
        assert code == 1 and "in use by the daemon" in err and "Type the device id" not in out
        with pytest.raises(StoreBusyError):
            wipe_device(dev)
        assert _device_bytes(dev) == before  # nothing rotated, nothing shredded
        daemon.kill()  # even a daemon killed hard leaves no stale lock behind
    code, _out, err = run_cli(["rotate-key", "--dir", str(dev.layout.root)])
    assert code == 0, err
    code, _out, err = run_cli(["wipe", "--yes", "--dir", str(dev.layout.root)])
    assert code == 0, err
    assert not dev.layout.root.exists()


def test_no_daemon_opens_the_store_during_a_rotation(tmp_path: Path, monkeypatch) -> None:
    """The lock spans the whole rotation: a daemon starting half-way is refused."""
    clock = FakeClock()
    dev = make_device(tmp_path, clock=clock)
    _populate(dev, clock)
    seen: list[str] = []
    real_rekey = ConsentStore.rekey

    def rekey_and_try_a_second_opener(self, new_key_file):
        real_rekey(self, new_key_file)
        try:
            ConsentStore.from_settings(dev.settings, clock)
        except StoreBusyError as exc:
            seen.append(str(exc))

    monkeypatch.setattr(ConsentStore, "rekey", rekey_and_try_a_second_opener)
    rotate_store_key(dev, clock)
    assert seen, "a second opener got in during the rotation"
    _snapshot(dev, clock)  # opens afterwards with the new key
