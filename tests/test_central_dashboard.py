"""The fleet dashboard on the embedded SQLite store (no PostgreSQL needed): log-in, sessions on
every data route, back-off after failed log-ins, the strict Origin rule, cookie flags, the CSP,
the charts' data per airport, gate and hour, Prometheus /metrics with a scrape token, uPlot's
files served from the assets folder, and the add-user and dashboard command lines.
(PostgreSQL's roll-ups behind the same app: tests/test_central_postgres.py.)
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.central_fleet import EXPECT, GATES, PASSWORD, T0, WINDOWS, fleet_db

from central.__main__ import main
from central.auth import Backoff, normal_origin, origin_allowed
from central.dashboard import CSP, create_app
from central.dashboard_assets import DEFAULT_ASSETS, AssetsMissing, load_uplot
from central.dashboard_cmd import origins_for, read_token
from central.db_access import central
from central.errors import CollectorError
from central.metrics import escape_label, exposition
from central.users import UserError, add_user, authenticate
from foundation.clock import FakeClock

ORIGIN = "http://testserver"
TOKEN = "s3cr3t-scrape-token-0123456789abcdef"


@pytest.fixture(scope="module")
def uplot() -> dict[str, bytes]:
    return load_uplot(DEFAULT_ASSETS)  # `make web`; a clear AssetsMissing error otherwise


@pytest.fixture
def db(tmp_path) -> str:
    path = fleet_db(tmp_path / "central.db")
    with central(path) as handle:
        add_user(handle, "ana", "viewer", PASSWORD)
        add_user(handle, "root", "admin", PASSWORD + "!")
    return str(path)


def _client(db: str, uplot, clock: FakeClock | None = None, **kw) -> TestClient:
    app = create_app(db, uplot=uplot, origins=frozenset({ORIGIN}), clock=clock, **kw)
    return TestClient(app, base_url=ORIGIN, follow_redirects=False)


def _log_in(client: TestClient, name: str = "ana", password: str = PASSWORD):
    return client.post("/login", data={"name": name, "password": password},
                       headers={"Origin": ORIGIN})


DATA_ROUTES = ("/api/places", "/api/series", "/api/fleet", "/api/devices", "/metrics")


def test_every_data_route_needs_a_session_and_the_page_sends_to_the_log_in(db, uplot):
    client = _client(db, uplot)
    for path in DATA_ROUTES:
        assert client.get(path).status_code == 401, path
    page = client.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert client.get("/login").status_code == 200
    assert client.get("/assets/uplot.js").content == uplot["uplot.js"]  # library code, no data
    client.cookies.set("cg_fleet", "forged-token")
    assert client.get("/api/fleet").status_code == 401


def test_log_in_sets_a_strict_http_only_cookie_and_log_out_ends_the_session(db, uplot):
    client = _client(db, uplot)
    answer = _log_in(client)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("cg_fleet=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie and "Path=/" in cookie
    for path in DATA_ROUTES:
        assert client.get(path).status_code == 200, path
    page = client.get("/")
    assert page.status_code == 200 and "ana (viewer)" in page.text
    assert client.get("/login").status_code == 303  # already logged in
    assert client.post("/logout", headers={"Origin": ORIGIN}).headers["location"] == "/login"
    assert client.get("/api/fleet").status_code == 401


def test_a_secure_dashboard_uses_a_host_prefixed_secure_cookie(db, uplot):
    client = _client(db, uplot, secure_cookie=True)
    cookie = _log_in(client).headers["set-cookie"]
    assert cookie.startswith("__Host-cg_fleet=") and "Secure" in cookie


def test_a_wrong_password_is_refused_and_repeated_failures_back_off_not_lock_out(db, uplot):
    clock = FakeClock()
    client = _client(db, uplot, clock=clock, backoff=Backoff(clock, free_failures=3))
    wrong = _log_in(client, password="not the password")
    assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    assert "set-cookie" not in wrong.headers
    assert _log_in(client, name="nobody").status_code == 401  # unknown name: the same answer
    for _ in range(2):
        assert _log_in(client, password="guess").status_code == 401
    throttled = _log_in(client)  # even the right password waits its turn
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    clock.advance(int(throttled.headers["retry-after"]))
    assert _log_in(client).status_code == 303  # after the wait the right password works


def test_a_post_without_the_dashboards_own_origin_is_refused(db, uplot):
    client = _client(db, uplot)
    form = {"name": "ana", "password": PASSWORD}
    for headers in ({}, {"Origin": "null"}, {"Origin": "http://evil.example"},
                    {"Origin": "http://testserver.evil.example"}, {"Origin": "https://testserver"}):
        answer = client.post("/login", data=form, headers=headers)
        assert answer.status_code == 403 and "set-cookie" not in answer.headers, headers
    assert _log_in(client).status_code == 303
    assert client.post("/logout").status_code == 403  # still logged in
    assert client.get("/api/fleet").status_code == 200


def test_origins_are_normalised_and_compared_exactly():
    allowed = frozenset({"https://fleet.example", "http://127.0.0.1:8090"})
    assert origin_allowed("https://FLEET.example:443", allowed)
    assert origin_allowed("http://127.0.0.1:8090", allowed)
    for bad in (None, "", "null", "https://fleet.example:8443", "http://fleet.example",
                "https://fleet.example/path", "https://user@fleet.example", "x" * 400):
        assert not origin_allowed(bad, allowed), bad
    assert normal_origin("ftp://fleet.example") is None
    args = argparse.Namespace(origin=[], bind=("127.0.0.1", 8090), tls_cert=None)
    assert origins_for(args) == {"http://127.0.0.1:8090", "http://localhost:8090"}
    with pytest.raises(CollectorError, match="--origin"):
        origins_for(argparse.Namespace(origin=[], bind=("0.0.0.0", 8090), tls_cert=None))


def test_every_answer_forbids_loading_anything_from_elsewhere(db, uplot):
    client = _client(db, uplot)
    _log_in(client)
    for path in ("/", "/login", "/api/fleet", "/assets/uplot.css", "/static/dashboard.js"):
        answer = client.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert CSP.startswith("default-src 'self';")
    page = client.get("/").text
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert client.get("/assets/other.js").status_code == 404


def test_the_series_give_each_chart_per_airport_gate_and_hour(db, uplot):
    client = _client(db, uplot)
    _log_in(client)
    places = client.get("/api/places").json()
    assert places["airports"] == ["-", "CDG", "LHR"]
    assert [g["gate"] for g in places["gates"]] == sorted(GATES.values())
    one = client.get("/api/series", params={"gate": "LHR.B12", "hours": 48}).json()
    assert one["hours"] == [T0, T0 + 3600, T0 + 7200] and one["windows"] == [12, 12, 12]
    for name, value in EXPECT.items():
        assert one["series"][name] == [value] * 3, name  # suppressed: None, never a guess
    assert one["series"]["peak_in_view"] == [6, 6, 6]  # a maximum, not a sum
    assert one["series"]["faults"] == [1, 0, 0]
    assert one["suppressed_cells"] == [24, 24, 24]
    lhr = client.get("/api/series", params={"airport": "LHR"}).json()
    assert lhr["series"]["temperature_screened"] == [240] * 3  # two gates
    assert client.get("/api/series", params={"airport": "-"}).json()["windows"] == [12] * 3
    fleet = client.get("/api/series").json()
    assert sum(fleet["windows"]) == WINDOWS * len(GATES)
    last = client.get("/api/series", params={"hours": 1}).json()
    assert last["hours"] == [T0 + 7200]
    for bad in ({"hours": 0}, {"hours": 10_000}, {"gate": "a b"}, {"airport": "x" * 40}):
        assert client.get("/api/series", params=bad).status_code == 422, bad
    day = client.get("/api/fleet").json()
    assert day["day"] == "2027-01-15" and day["total"]["windows"] == WINDOWS * len(GATES)
    assert {g["airport"] for g in day["gates"]} == {"-", "CDG", "LHR"}
    assert client.get("/api/fleet", params={"day": "2027-02-30"}).status_code == 422
    devices = client.get("/api/devices").json()["devices"]
    assert [(d["device"], d["gate"]) for d in devices] == sorted(GATES.items())


def test_metrics_take_a_scrape_token_or_a_session_and_escape_label_values(db, uplot):
    client = _client(db, uplot, scrape_token=TOKEN)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = answer.text.splitlines()
    assert "# TYPE consentgate_fleet_temperature_screened_total counter" in lines
    assert ('consentgate_fleet_temperature_screened_total{airport="LHR",gate="LHR.B12"} 360'
            in lines)
    assert 'consentgate_fleet_not_matched_total{airport="CDG",gate="CDG.K3"} 0' in lines
    assert 'consentgate_fleet_peak_in_view{airport="-",gate="G9"} 6' in lines
    assert "consentgate_fleet_devices 4" in lines
    samples = [ln for ln in lines if ln and not ln.startswith("#")]
    assert all(len(ln.rsplit(" ", 1)) == 2 and ln.rsplit(" ", 1)[1].isdigit() for ln in samples)
    _log_in(client)
    assert client.get("/metrics").status_code == 200  # an operator's browser session
    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    text = exposition([{"airport": 'x"y', "gate": "g\n", "windows": 1, "suppressed_cells": 0,
                        "last_hour": None, "last_hour_peak_in_view": None,
                        **dict.fromkeys(("people_detected", "presented", "matched",
                                         "not_matched", "wrong_flight", "gates_opened",
                                         "passages", "tailgating_alarms",
                                         "temperature_screened", "referred", "unreliable",
                                         "close_contacts", "peak_in_view", "faults",
                                         "presentation_attacks"), 0)}], [])
    assert 'consentgate_fleet_windows_total{airport="x\\"y",gate="g\\n"} 1' in text


def test_users_are_stored_as_hashes_and_checked(db):
    with central(db) as handle:
        stored = handle.rows("SELECT name, role, password_hash FROM dashboard_users "
                             "ORDER BY name")
        assert [(n, r) for n, r, _ in stored] == [("ana", "viewer"), ("root", "admin")]
        assert all(h.startswith("scrypt$") and PASSWORD not in h for _, _, h in stored)
        assert authenticate(handle, "ana", PASSWORD).role == "viewer"
        assert authenticate(handle, "ana", PASSWORD + "x") is None
        assert authenticate(handle, "bad name!", PASSWORD) is None
        with pytest.raises(UserError, match="12 or more"):
            add_user(handle, "bob", "viewer", "short")
        with pytest.raises(UserError, match="role"):
            add_user(handle, "bob", "root", PASSWORD)


def test_add_user_command_reads_a_password_file_and_updates_a_role(tmp_path, capsys):
    db = tmp_path / "new.db"
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    assert main(["add-user", "ops", "--role", "viewer", "--db", str(db),
                 "--password-file", str(secret)]) == 0
    assert main(["add-user", "ops", "--role", "admin", "--db", str(db),
                 "--password-file", str(secret)]) == 0
    out = capsys.readouterr().out
    assert "added ops (viewer)" in out and "updated ops (admin)" in out
    assert PASSWORD not in out
    with central(db) as handle:
        assert authenticate(handle, "ops", PASSWORD).role == "admin"
    secret.write_text("short\n")
    assert main(["add-user", "ops", "--role", "admin", "--db", str(db),
                 "--password-file", str(secret)]) == 1
    assert "12 or more" in capsys.readouterr().err
    assert main(["add-user", "a b", "--role", "admin", "--db", str(db),
                 "--password-file", str(secret)]) == 1
    assert "user name" in capsys.readouterr().err


def test_missing_uplot_and_bad_scrape_tokens_stop_the_start_with_one_line(tmp_path, capsys):
    with pytest.raises(AssetsMissing, match="make web"):
        load_uplot(tmp_path)
    assert main(["dashboard", "--db", str(tmp_path / "x.db"), "--assets", str(tmp_path)]) == 1
    assert "run `make web`" in capsys.readouterr().err
    token = tmp_path / "token"
    token.write_text(TOKEN)
    os.chmod(token, 0o644)
    with pytest.raises(CollectorError, match="chmod 600"):
        read_token(token)
    os.chmod(token, 0o600)
    assert read_token(token) == TOKEN
    token.write_text("short")
    with pytest.raises(CollectorError, match="24"):
        read_token(token)
    assert main(["dashboard", "--db", str(tmp_path / "missing.db")]) == 1
    assert "no such SQLite file" in capsys.readouterr().err


def test_the_admin_refresh_is_for_admins_and_postgres_only(db, uplot):
    client = _client(db, uplot)
    _log_in(client)
    assert client.post("/api/refresh", headers={"Origin": ORIGIN}).status_code == 403
    admin = _client(db, uplot)
    _log_in(admin, "root", PASSWORD + "!")
    assert admin.post("/api/refresh", headers={"Origin": ORIGIN}).status_code == 409


def test_the_assets_folder_defaults_to_the_checkouts_web_node_modules():
    assert Path(__file__).resolve().parents[1] / "web" / "node_modules" == DEFAULT_ASSETS
