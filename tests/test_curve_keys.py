"""Telemetry key files: create, load, clear errors for wrong or missing files."""

from __future__ import annotations

import stat

import pytest

from foundation.curve_keys import create_keypair, load_keypair, load_public_key
from foundation.errors import KeyFileError
from foundation.settings import Settings


def test_create_and_load(tmp_path):
    public_file, secret_file = create_keypair(tmp_path / "keys", "device")
    assert public_file.name == "device.key" and secret_file.name == "device.key_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    public, secret = load_keypair(secret_file)
    assert len(public) == 40 and len(secret) == 40
    assert load_public_key(public_file) == public


def test_public_file_is_not_a_keypair(tmp_path):
    public_file, _ = create_keypair(tmp_path, "device")
    with pytest.raises(KeyFileError, match="key_secret"):
        load_keypair(public_file)


@pytest.mark.parametrize("content", ["", "public-key = \"tooshort\"\n", "garbage\n"])
def test_malformed_or_missing_files(tmp_path, content):
    with pytest.raises(KeyFileError, match="provision"):
        load_public_key(tmp_path / "missing.key")
    bad = tmp_path / "bad.key"
    bad.write_text(content)
    with pytest.raises(KeyFileError):
        load_public_key(bad)


def test_settings_default_key_paths_sit_in_data_dir(tmp_path):
    s = Settings.model_validate({"device": {"data_dir": str(tmp_path)}})
    assert s.telemetry_device_secret_key_file == tmp_path / "keys" / "device.key_secret"
    assert s.telemetry_central_public_key_file == tmp_path / "keys" / "central.key"


def test_uplink_from_settings_names_the_missing_key_file(tmp_path):
    from edge.telemetry.counters import WindowCounters
    from edge.telemetry.outbox import MemoryOutbox
    from edge.telemetry.uplink import Uplink
    from foundation.clock import FakeClock

    s = Settings.model_validate({"device": {"data_dir": str(tmp_path)}})
    clock = FakeClock()
    with pytest.raises(KeyFileError, match=r"device\.key_secret"):
        Uplink.from_settings(s, WindowCounters(clock, 60), MemoryOutbox(), clock)
    create_keypair(tmp_path / "keys", "device")
    with pytest.raises(KeyFileError, match=r"central\.key"):
        Uplink.from_settings(s, WindowCounters(clock, 60), MemoryOutbox(), clock)
    create_keypair(tmp_path / "keys", "central")
    uplink = Uplink.from_settings(s, WindowCounters(clock, 60), MemoryOutbox(), clock)
    assert uplink.status() == {"pending": 0, "last_ack_seq": None, "connected": False}
