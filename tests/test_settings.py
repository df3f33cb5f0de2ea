"""Settings load from TOML, refuse unknown keys and bad values with the field's name."""

from pathlib import Path

import pytest

from foundation.settings import Settings, SettingsError, load_settings


def test_defaults_are_valid() -> None:
    s = load_settings(None)
    assert isinstance(s, Settings)
    assert s.store_path == s.device.data_dir / "store.db"


def test_unknown_key_names_field(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text("[vision]\ndetektor = 'yunet'\n")
    with pytest.raises(SettingsError, match=r"vision\.detektor"):
        load_settings(f)


def test_bad_value_names_field(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text("[telemetry]\nk_anonymity = 0\n")
    with pytest.raises(SettingsError, match=r"telemetry\.k_anonymity"):
        load_settings(f)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="provisioning init"):
        load_settings(tmp_path / "nope.toml")


def test_not_toml(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text("[[[")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(f)
