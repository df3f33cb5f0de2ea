"""The dashboard behind a reverse proxy, as a real process: with `--trusted-proxy` the log-in
back-off counts each browser by the proxy's X-Forwarded-For; without it (the default) the header
is ignored, so a client cannot dodge the back-off by making up a new address for every guess.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from helpers.central_fleet import PASSWORD, fleet_db

from central.__main__ import main
from foundation.peers import Peer, free_port, python_module

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/login", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _statuses(tmp_path: Path, *extra: str) -> list[int]:
    """Seven wrong guesses for one name, each from a made-up forwarded address."""
    tmp_path.mkdir()
    db = fleet_db(tmp_path / "central.db")
    (tmp_path / "pw").write_text(PASSWORD)
    assert main(["add-user", "ana", "--role", "viewer", "--db", str(db),
                 "--password-file", str(tmp_path / "pw")]) == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    peer = Peer("dashboard", python_module("central", "dashboard", "--db", db, "--bind",
                                           f"127.0.0.1:{port}", *extra),
                tmp_path / "dashboard.log", ready=lambda: _up(url), cwd=ROOT)
    peer.start()
    try:
        return [httpx.post(url + "/login", data={"name": "ana", "password": "guess"},
                           headers={"Origin": url, "X-Forwarded-For": f"203.0.113.{i}"},
                           timeout=10).status_code for i in range(7)]
    finally:
        peer.stop()


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(tmp_path):
    assert _statuses(tmp_path / "plain")[5:] == [429, 429]  # one client: backed off after 5
    assert _statuses(tmp_path / "proxied", "--trusted-proxy", "127.0.0.1") == [401] * 7


def test_a_trusted_proxy_must_be_an_address_or_network(capsys):
    with pytest.raises(SystemExit):
        main(["dashboard", "--db", "x.db", "--trusted-proxy", "proxy.example"])
    assert "give the proxy's address or network" in capsys.readouterr().err
