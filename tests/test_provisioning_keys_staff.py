"""`import-central-key` and `add-staff`: success and every refusal."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import zmq.auth
from helpers.provisioning import FakeStdin, make_device, run_cli

from edge.consent.store import ConsentStore
from edge.kiosk.passwords import verify_password
from foundation.clock import FakeClock
from provisioning.central_key import import_central_key
from provisioning.errors import CentralKeyError, StaffError
from provisioning.staff import read_password

PASSWORD = "correct horse battery staple"


@pytest.fixture
def central_keys(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "central").mkdir()
    public, secret = zmq.auth.create_certificates(str(tmp_path / "central"), "central")
    return Path(public), Path(secret)


# -- import-central-key -------------------------------------------------------------------------
def test_import_central_key(tmp_path: Path, central_keys) -> None:
    dev = make_device(tmp_path)
    public, _ = central_keys
    code, _out, err = run_cli(["import-central-key", str(public), "--dir",
                              str(dev.layout.root)])
    assert code == 0, err
    installed = dev.layout.central_public_key
    assert zmq.auth.load_certificate(installed) == zmq.auth.load_certificate(public)
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600


def test_refuses_central_secret_key(tmp_path: Path, central_keys) -> None:
    dev = make_device(tmp_path)
    _, secret = central_keys
    code, _out, err = run_cli(["import-central-key", str(secret), "--dir", str(dev.layout.root)])
    assert code == 1 and "SECRET" in err
    assert not dev.layout.central_public_key.exists()


@pytest.mark.parametrize("content", [None, "", "not a key file\n",
                                     'metadata\ncurve\n    public-key = "short"\n'])
def test_refuses_bad_central_key_files(tmp_path: Path, content: str | None) -> None:
    dev = make_device(tmp_path)
    f = tmp_path / "central.key"
    if content is not None:
        f.write_text(content)
    with pytest.raises(CentralKeyError):
        import_central_key(dev.layout, f)
    assert not dev.layout.central_public_key.exists()


def test_init_can_import_central_key(tmp_path: Path, central_keys) -> None:
    dev = make_device(tmp_path, central_public_key=central_keys[0])
    assert dev.layout.central_public_key.is_file()


def test_commands_need_a_device(tmp_path: Path, central_keys) -> None:
    code, _out, err = run_cli(["import-central-key", str(central_keys[0]), "--dir",
                               str(tmp_path / "nowhere")])
    assert code == 1 and "provisioning init" in err


# -- add-staff ----------------------------------------------------------------------------------
def _staff(dev, name: str):
    with ConsentStore.from_settings(dev.settings, FakeClock()) as store:
        return store.staff.get(name)


def test_add_staff_from_stdin(tmp_path: Path, monkeypatch) -> None:
    dev = make_device(tmp_path)
    code, out, err = run_cli(["add-staff", "alice", "--role", "supervisor", "--dir",
                              str(dev.layout.root), "--log-level", "debug"],
                             stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    assert code == 0, err
    staff = _staff(dev, "alice")
    assert staff is not None and staff.role == "supervisor"
    assert verify_password(PASSWORD, staff.password_hash)
    assert PASSWORD not in out + err and "alice" not in err  # logs carry no name
    # again: updates the account (new role, new password)
    code, _, err = run_cli(["add-staff", "alice", "--role", "agent", "--dir",
                            str(dev.layout.root)], stdin="another long password\n",
                           monkeypatch=monkeypatch)
    assert code == 0, err
    staff = _staff(dev, "alice")
    assert staff.role == "agent" and verify_password("another long password",
                                                     staff.password_hash)


def test_password_is_never_an_argument(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    code, _out, err = run_cli(["add-staff", "bob", "--role", "agent", "--password", PASSWORD,
                               "--dir", str(dev.layout.root)])
    assert code == 2 and "unrecognized arguments" in err
    assert _staff(dev, "bob") is None


@pytest.mark.parametrize("argv, stdin, message", [
    (["bob", "--role", "agent"], "short\n", "shorter than 12"),
    (["bob", "--role", "agent"], "", "no password on stdin"),
    (["bob", "--role", "agent"], " padded password x \n", "white space"),
    (["bad name!", "--role", "agent"], PASSWORD + "\n", "not allowed"),
])
def test_add_staff_refusals(tmp_path: Path, monkeypatch, argv, stdin, message) -> None:
    dev = make_device(tmp_path)
    code, _out, err = run_cli(["add-staff", *argv, "--dir", str(dev.layout.root)],
                              stdin=stdin, monkeypatch=monkeypatch)
    assert code == 1 and message in err
    with ConsentStore.from_settings(dev.settings, FakeClock()) as store:
        assert store.staff.all() == []


def test_unknown_role_is_a_usage_error(tmp_path: Path, monkeypatch) -> None:
    dev = make_device(tmp_path)
    code, _out, err = run_cli(["add-staff", "bob", "--role", "god", "--dir",
                               str(dev.layout.root)], stdin=PASSWORD + "\n",
                              monkeypatch=monkeypatch)
    assert code == 2 and "invalid choice" in err


def test_terminal_prompts_twice(monkeypatch) -> None:
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(StaffError, match="differ"):
        read_password(FakeStdin(tty=True))
    answers = iter([PASSWORD, PASSWORD])
    assert read_password(FakeStdin(tty=True)) == PASSWORD
