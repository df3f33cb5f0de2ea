"""The fleet dashboard on PostgreSQL (a throwaway cluster, central.pg_cluster): the same app as
on SQLite, read from the roll-ups (central.rollups); users in migration 4's `dashboard_users`;
the admin's roll-up refresh; /metrics from the roll-ups; the SQLite and PostgreSQL answers agree.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from helpers.central_fleet import GATES, PASSWORD, T0, WINDOWS, fill

from central.__main__ import main
from central.dashboard import create_app
from central.dashboard_assets import DEFAULT_ASSETS, load_uplot
from central.db_access import central
from central.pg_store import PostgresStore
from central.rollups import refresh
from central.sequencing import Incoming
from central.users import add_user, authenticate
from central.windows_db import SqliteStore
from wire.telemetry import COUNT_FIELDS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
ORIGIN = "http://testserver"


def _client(db: str, **kw) -> TestClient:
    app = create_app(db, uplot=load_uplot(DEFAULT_ASSETS), origins=frozenset({ORIGIN}), **kw)
    return TestClient(app, base_url=ORIGIN, follow_redirects=False)


def _log_in(client: TestClient, name: str, password: str) -> None:
    answer = client.post("/login", data={"name": name, "password": password},
                         headers={"Origin": ORIGIN})
    assert answer.status_code == 303, answer.text


def _inc(seq: int, device: str, key: str) -> Incoming:
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"matched": seq, "faults": None}
    return Incoming(key, {"type": "window", "epoch": 1, "seq": seq, "prev": seq - 1 or None},
                    {"device": device, "gate": "G1", "window_start": 1_800_000_000 + 300 * seq,
                     "window_s": 300, "k": 5, "epsilon": None, "counts": counts})


def test_the_fleet_dashboard_shows_the_roll_ups(dsn):
    store = PostgresStore(dsn)
    try:
        for device, key in (("d1", "K1"), ("d2", "K2")):  # 2 gates' devices, 3 hours of windows
            store.apply([_inc(s, device, key) for s in range(1, 37)], time.time())
        assert store.conn is not None
        refresh(store.conn)
    finally:
        store.close()
    with central(dsn) as handle:
        add_user(handle, "ana", "viewer", PASSWORD)
    client = _client(dsn)
    assert client.get("/api/fleet").status_code == 401
    _log_in(client, "ana", PASSWORD)
    fleet = client.get("/api/fleet").json()
    assert fleet["day"] == "2027-01-15"  # the latest day with windows (t = 1.8e9 + ...)
    assert fleet["total"]["windows"] == 72 and fleet["total"]["matched"] == 2 * sum(range(37))
    assert fleet["total"]["suppressed_cells"] == 72  # faults: null in every window
    assert fleet["total"]["faults"] is None  # suppressed everywhere: unknown, not 0
    assert [g["gate"] for g in fleet["gates"]] == ["G1"] and fleet["gates"][0]["devices"] == 2
    hours = client.get("/api/series", params={"hours": 24}).json()
    assert sum(hours["windows"]) == 72 and len(hours["hours"]) == 4
    devices = client.get("/api/devices").json()["devices"]
    assert [d["device"] for d in devices] == ["d1", "d2"]
    assert all(d["last_hour"].endswith(":00Z") for d in devices)
    page = client.get("/")
    assert page.status_code == 200 and "Fleet, 2027-01-15" in page.text
    assert "Devices: 2, silent 0" in page.text
    assert client.get("/api/fleet", params={"day": "2027-01-16"}).json()["total"]["windows"] == 0
    assert client.get("/api/fleet", params={"day": "not-a-day"}).status_code == 422


def test_postgres_and_sqlite_give_the_same_answers(dsn, tmp_path):
    pg = PostgresStore(dsn)
    lite = SqliteStore(tmp_path / "central.db")
    try:
        fill(pg)
        fill(lite)
        assert pg.conn is not None
        refresh(pg.conn)
    finally:
        pg.close()
        lite.close()
    answers = []
    for db in (dsn, str(tmp_path / "central.db")):
        with central(db) as handle:
            add_user(handle, "ana", "viewer", PASSWORD)
        client = _client(db)
        _log_in(client, "ana", PASSWORD)
        answers.append([client.get(p, params=q).json() for p, q in (
            ("/api/places", {}), ("/api/series", {"airport": "LHR"}),
            ("/api/series", {"gate": "CDG.K3", "hours": 2}), ("/api/fleet", {}))])
        answers[-1].append(client.get("/metrics").text)
    assert answers[0] == answers[1]
    series = answers[0][1]
    assert series["hours"] == [T0, T0 + 3600, T0 + 7200]
    assert answers[0][3]["total"]["windows"] == WINDOWS * len(GATES)


def test_users_live_in_migration_4_and_only_an_admin_refreshes_the_roll_ups(dsn, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    assert main(["add-user", "root", "--role", "admin", "--db", dsn,
                 "--password-file", str(secret)]) == 0
    with central(dsn) as handle:
        add_user(handle, "ana", "viewer", PASSWORD)
        assert authenticate(handle, "root", PASSWORD).role == "admin"
        assert authenticate(handle, "root", "wrong password!") is None
        hashes = handle.rows("SELECT password_hash FROM dashboard_users")
        assert all(h.startswith("scrypt$") for h, in hashes)
        version = handle.rows("SELECT description FROM schema_version WHERE version = 4")
        assert version == [("dashboard users",)]
    store = PostgresStore(dsn)
    try:
        fill(store)  # marks device-hours; no refresh yet
    finally:
        store.close()
    viewer, admin = _client(dsn), _client(dsn)
    _log_in(viewer, "ana", PASSWORD)
    _log_in(admin, "root", PASSWORD)
    assert viewer.get("/api/series").json()["hours"] == []  # the roll-ups are not refreshed
    assert viewer.post("/api/refresh", headers={"Origin": ORIGIN}).status_code == 403
    assert admin.post("/api/refresh").status_code == 403  # no Origin: refused before anything
    done = admin.post("/api/refresh", headers={"Origin": ORIGIN}).json()
    assert done["device_hours"] == 3 * len(GATES)
    assert len(viewer.get("/api/series").json()["hours"]) == 3
