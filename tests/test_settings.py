"""Settings load from TOML, refuse unknown keys and bad values with the field's name."""

import subprocess
import sys
from pathlib import Path

import pytest

import foundation.settings as settings_mod
from foundation.settings import Settings, SettingsError, default_model_dir, load_settings

ROOT = Path(__file__).resolve().parents[1]


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


def test_a_file_far_larger_than_settings_is_refused_unread(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_bytes(b"# " + b"x" * (2 << 20))
    with pytest.raises(SettingsError, match="is over 1024 KiB, so it is not a settings file"):
        load_settings(f)


def test_a_folder_instead_of_the_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="is a folder, not a file") as info:
        load_settings(tmp_path)
    assert "provisioning init" in str(info.value)
    (tmp_path / "settings.toml").write_text("")
    with pytest.raises(SettingsError, match=f"pass --config {tmp_path / 'settings.toml'}"):
        load_settings(tmp_path)


def test_edge_run_on_a_folder_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text("")
    proc = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "IsADirectoryError" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: settings file {tmp_path} is a folder, not a file: pass --config "
        f"{tmp_path / 'settings.toml'}"]


def test_default_model_dir_finds_the_checkouts_models(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings_mod.MODEL_DIR_ENV, str(tmp_path / "env"))
    assert default_model_dir() == tmp_path / "env"  # the environment always wins
    monkeypatch.delenv(settings_mod.MODEL_DIR_ENV)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    monkeypatch.setattr(settings_mod, "_CHECKOUT", checkout)
    assert default_model_dir() == settings_mod.SYSTEM_MODEL_DIR  # not a checkout
    (checkout / ".models").mkdir()
    assert default_model_dir() == settings_mod.SYSTEM_MODEL_DIR  # no pyproject: not a checkout
    (checkout / "pyproject.toml").write_text("")
    assert default_model_dir() == checkout / ".models"  # after `make models`
    assert Settings().vision.model_dir == checkout / ".models"
    places = settings_mod.model_dir_places(checkout / ".models")
    assert str(checkout / ".models") in places and "/var/lib/consentgate/models" in places
    assert settings_mod.model_dir_places(tmp_path / "elsewhere") == ""  # chosen explicitly


def test_this_checkout_uses_its_own_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings_mod.MODEL_DIR_ENV, raising=False)
    want = ROOT / ".models" if (ROOT / ".models").is_dir() else settings_mod.SYSTEM_MODEL_DIR
    assert default_model_dir() == want
