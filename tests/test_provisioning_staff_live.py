"""Provisioning's staff commands while the real daemon runs (issue 17 item 5): `add-staff`,
`list-staff`, `disable-staff` and `unlock-staff` go through the daemon's admin socket (the
daemon holds the store's lock, so the CLI never opens the store beside it), the new account
logs in to the daemon's kiosk at once, and with the daemon stopped the same commands open the
store directly again."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import httpx
import pytest
from helpers.devices import daemon_device
from helpers.provisioning import run_cli

from edge.consent.store import ConsentStore
from edge.kiosk.admin_socket import admin_socket_path
from foundation.clock import SystemClock
from foundation.peers import Peer, daemon_argv
from foundation.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "a long enough password"


def _wait_up(base: str, proc: Peer, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(base + "/healthz", timeout=1.0)  # 503 without a gate controller: up
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError(f"the daemon never answered (rc={proc.poll()}):\n"
                         f"{proc.output()[-2000:]}")


def _log_in(base: str, name: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(base + "/api/session/login", json={"staff_id": name, "password": password},
                      headers={"Origin": base}, timeout=30)


@pytest.mark.integration
def test_staff_commands_go_through_the_running_daemon(tmp_path: Path, monkeypatch,
                                                      installed_model_dir: Path) -> None:
    settings_file, port = daemon_device(tmp_path, installed_model_dir)
    settings = load_settings(settings_file)
    device = ["--config", str(settings_file)]
    base = f"http://127.0.0.1:{port}"
    sock = admin_socket_path(settings.store_path)
    proc = Peer("daemon", daemon_argv(settings_file), tmp_path / "daemon.log", cwd=ROOT).start()
    try:
        _wait_up(base, proc)
        mode = os.stat(sock).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600  # owner only

        code, out, err = run_cli(["add-staff", "live.sup", "--role", "supervisor", *device],
                                 stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
        assert code == 0, err
        assert "through the running daemon" in out and PASSWORD not in out + err
        assert _log_in(base, "live.sup").status_code == 200  # at once, no restart

        code, out, err = run_cli(["add-staff", "live.agent", "--role", "agent", *device],
                                 stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
        assert code == 0, err
        for _ in range(settings.kiosk.max_login_failures):
            assert _log_in(base, "live.agent", "wrong password!!").status_code == 401
        refused = _log_in(base, "live.agent")
        assert refused.status_code == 429 and "ask a supervisor" in refused.json()["message"]

        code, out, err = run_cli(["list-staff", *device])
        assert code == 0, err
        lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
        assert set(lines) == {"live.sup", "live.agent"}
        assert "log-ins wait" in lines["live.agent"] and "supervisor" in lines["live.sup"]

        code, out, err = run_cli(["unlock-staff", "live.agent", *device])
        assert code == 0, err
        assert "5 failed log-in(s) cleared" in out
        assert _log_in(base, "live.agent").status_code == 200

        code, out, err = run_cli(["disable-staff", "live.agent", *device])
        assert code == 0, err
        assert _log_in(base, "live.agent").status_code == 401
        code, _, err = run_cli(["disable-staff", "nobody", *device])
        assert code == 1 and "the daemon refused" in err and "no staff account" in err
        code, _, err = run_cli(["disable-staff", "live.agent", "--enable", *device])
        assert code == 0, err
        assert _log_in(base, "live.agent").status_code == 200
    finally:
        rc = proc.stop(30)
    assert rc == 0, proc.output()[-2000:]
    assert not sock.exists()  # the daemon removed its socket

    # the daemon is gone: the same commands open the store directly, as before
    code, out, err = run_cli(["add-staff", "after.hours", "--role", "agent", *device],
                             stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    assert code == 0, err
    assert "through the running daemon" not in out
    code, out, err = run_cli(["unlock-staff", "live.agent", *device])
    assert code == 0 and "not running" in out
    with ConsentStore.from_settings(settings, SystemClock()) as store:
        assert {s.name for s in store.staff.all()} == {"live.sup", "live.agent", "after.hours"}
        rows = store.db.read("SELECT event, actor, subject FROM audit WHERE event LIKE 'staff_%'"
                             " AND event NOT IN ('staff_login', 'staff_logout') ORDER BY seq")
    assert rows == [("staff_upserted", "provisioning", "live.sup"),
                    ("staff_upserted", "provisioning", "live.agent"),
                    ("staff_unlocked", "provisioning", "live.agent"),
                    ("staff_disabled", "provisioning", "live.agent"),
                    ("staff_enabled", "provisioning", "live.agent"),
                    ("staff_upserted", "provisioning", "after.hours")]
