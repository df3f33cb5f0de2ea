"""Staff administration on the kiosk (issue 17 item 5) and the daemon's admin socket.

A supervisor lists, adds, disables, enables and unlocks staff and resets passwords through the
real kiosk app on a real encrypted store; every change is audited (names and actions only, no
password or hash); other roles get 403; the Origin and CSRF rules hold on every change; and
"ask a supervisor" in the lock-out message is true. The admin socket (edge.operations.
admin_socket) is served on a real unix socket: owner-only, bounded and validated requests.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import warnings
from pathlib import Path

import pytest
from helpers.kiosk import PASSWORD, kiosk_origin

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from edge.kiosk.admin_socket import (
    MAX_REQUEST,
    AdminSocketServer,
    admin_request,
    handle,
)
from edge.kiosk.passwords import hash_password, verify_password
from edge.kiosk.routers.staff_admin import StaffAdmin

NEW_PASSWORD = "a brand new passphrase"
WRONG = "wrong-password-x"


def screen(env, address: str = "127.0.0.1") -> TestClient:
    client = TestClient(env.client.app, headers={"Origin": kiosk_origin(env.services.settings)},
                        client=(address, 50000))
    assert client.get("/").status_code == 200  # its device cookie
    return client


def log_in(client: TestClient, name: str, password: str = PASSWORD):
    r = client.post("/api/session/login", json={"staff_id": name, "password": password})
    if r.status_code == 200:
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return r


def audit_rows(env, *events: str) -> list[tuple]:
    marks = ",".join("?" * len(events))
    return env.store.db.read(f"SELECT event, actor, subject, reason FROM audit WHERE event IN "
                             f"({marks}) ORDER BY seq", events)


def no_secrets_in_audit(env, *secrets: str) -> None:
    text = json.dumps(env.store.db.read("SELECT * FROM audit"), default=repr)
    for secret in (*secrets, "scrypt$"):
        assert secret not in text


@pytest.fixture
def sup(kiosk):
    client = screen(kiosk, "10.20.0.9")
    assert log_in(client, "sup1").status_code == 200
    return client


def test_supervisor_lists_staff_without_any_hash(kiosk, sup):
    r = sup.get("/api/staff")
    assert r.status_code == 200
    body = r.json()
    assert body["you"] == "sup1"
    rows = {row["staff_id"]: row for row in body["staff"]}
    assert {n: (r["role"], r["disabled"], r["locked_out"]) for n, r in rows.items()} == {
        "agent1": ("agent", False, False), "eng1": ("engineer", False, False),
        "sup1": ("supervisor", False, False)}
    assert "scrypt" not in r.text and "hash" not in r.text


@pytest.mark.parametrize("name", ["agent1", "eng1"])
def test_other_roles_get_403_everywhere(kiosk, name):
    client = screen(kiosk)
    assert log_in(client, name).status_code == 200
    calls = [("GET", "/api/staff", None),
             ("POST", "/api/staff", {"staff_id": "x1", "role": "agent", "password": NEW_PASSWORD}),
             ("POST", "/api/staff/disable", {"staff_id": "sup1"}),
             ("POST", "/api/staff/enable", {"staff_id": "sup1"}),
             ("POST", "/api/staff/unlock", {"staff_id": "sup1"}),
             ("POST", "/api/staff/password", {"staff_id": "sup1", "password": NEW_PASSWORD})]
    for method, path, body in calls:
        r = client.request(method, path, json=body)
        assert r.status_code == 403 and r.json()["error"] == "wrong_role", (path, r.text)
    assert kiosk.store.staff.get("x1") is None
    assert verify_password(PASSWORD, kiosk.store.staff.get("sup1").password_hash)


def test_add_staff_then_they_log_in(kiosk, sup):
    r = sup.post("/api/staff", json={"staff_id": "new.agent", "role": "agent",
                                     "password": NEW_PASSWORD})
    assert r.status_code == 201, r.text
    assert NEW_PASSWORD not in r.text
    assert log_in(screen(kiosk), "new.agent", NEW_PASSWORD).status_code == 200
    r = sup.post("/api/staff", json={"staff_id": "new.agent", "role": "supervisor",
                                     "password": NEW_PASSWORD})
    assert r.status_code == 409 and r.json()["error"] == "staff_conflict"
    assert kiosk.store.staff.get("new.agent").role == "agent"  # not overwritten
    assert audit_rows(kiosk, "staff_added") == [("staff_added", "sup1", "new.agent", "agent")]
    no_secrets_in_audit(kiosk, NEW_PASSWORD)


@pytest.mark.parametrize("body, words", [
    ({"staff_id": "bob", "role": "agent", "password": "short pw"}, "shorter than 12"),
    ({"staff_id": "bob", "role": "agent", "password": " padded password x "}, "white space"),
    ({"staff_id": "bad name!", "role": "agent", "password": NEW_PASSWORD}, "not allowed"),
    ({"staff_id": "bob", "role": "god", "password": NEW_PASSWORD}, "unknown"),
])
def test_add_staff_refusals_follow_the_policy(kiosk, sup, body, words):
    r = sup.post("/api/staff", json=body)
    assert r.status_code == 422 and words in r.json()["message"], r.text
    assert body["password"] not in r.text
    assert kiosk.store.staff.get(body["staff_id"]) is None


def test_disable_ends_sessions_and_enable_lets_them_back(kiosk, sup):
    agent = screen(kiosk)
    assert log_in(agent, "agent1").status_code == 200
    assert agent.get("/api/session").status_code == 200
    r = sup.post("/api/staff/disable", json={"staff_id": "agent1"})
    assert r.status_code == 200, r.text
    assert agent.get("/api/session").status_code == 401  # the open session ended at once
    assert log_in(screen(kiosk), "agent1").status_code == 401
    rows = {row["staff_id"]: row for row in sup.get("/api/staff").json()["staff"]}
    assert rows["agent1"]["disabled"] is True
    assert sup.post("/api/staff/enable", json={"staff_id": "agent1"}).status_code == 200
    assert log_in(screen(kiosk), "agent1").status_code == 200
    r = sup.post("/api/staff/disable", json={"staff_id": "sup1"})
    assert r.status_code == 409 and "your own account" in r.json()["message"]
    r = sup.post("/api/staff/disable", json={"staff_id": "nobody"})
    assert r.status_code == 404
    assert audit_rows(kiosk, "staff_disabled", "staff_enabled") == [
        ("staff_disabled", "sup1", "agent1", None), ("staff_enabled", "sup1", "agent1", None)]


def test_ask_a_supervisor_is_true(kiosk, sup):
    agent = screen(kiosk)
    for _ in range(kiosk.services.settings.kiosk.max_login_failures):
        assert log_in(agent, "agent1", WRONG).status_code == 401
    r = log_in(agent, "agent1")
    assert r.status_code == 429 and "ask a supervisor" in r.json()["message"]
    rows = {row["staff_id"]: row for row in sup.get("/api/staff").json()["staff"]}
    assert rows["agent1"]["locked_out"] is True and rows["agent1"]["wait_s"] >= 1
    assert rows["agent1"]["failures"] == kiosk.services.settings.kiosk.max_login_failures
    r = sup.post("/api/staff/unlock", json={"staff_id": "agent1"})
    assert r.status_code == 200, r.text
    rows = {row["staff_id"]: row for row in sup.get("/api/staff").json()["staff"]}
    assert rows["agent1"]["locked_out"] is False and rows["agent1"]["failures"] == 0
    assert log_in(agent, "agent1").status_code == 200  # at once, no clock moved
    assert audit_rows(kiosk, "staff_unlocked") == [
        ("staff_unlocked", "sup1", "agent1", "failures=5")]


def test_unlock_clears_the_screens_own_count_of_that_name(kiosk, sup):
    """A staff member who failed many times from one screen is slowed by the screen's count
    too; the supervisor's unlock takes that name's failures off it."""
    agent = screen(kiosk)
    failed = 0
    while failed < 4 * kiosk.services.settings.kiosk.max_login_failures:  # a patient typist
        r = log_in(agent, "agent1", WRONG)
        if r.status_code == 429:
            kiosk.clock.advance(int(r.headers["retry-after"]))
        else:
            failed += 1
    throttle = kiosk.client.app.state.kiosk.throttle
    client = next(iter(throttle._clients))
    assert throttle._clients[client].count == failed  # the screen's own count is full too
    assert log_in(agent, "agent1").status_code == 429
    assert sup.post("/api/staff/unlock", json={"staff_id": "agent1"}).status_code == 200
    assert log_in(agent, "agent1").status_code == 200


def test_reset_password(kiosk, sup):
    agent = screen(kiosk)
    assert log_in(agent, "agent1").status_code == 200
    r = sup.post("/api/staff/password", json={"staff_id": "agent1", "password": "too short"})
    assert r.status_code == 422 and "too short" not in r.text
    r = sup.post("/api/staff/password", json={"staff_id": "agent1", "password": NEW_PASSWORD})
    assert r.status_code == 200 and NEW_PASSWORD not in r.text
    assert agent.get("/api/session").status_code == 401  # the old session ended
    assert log_in(screen(kiosk), "agent1", PASSWORD).status_code == 401
    assert log_in(screen(kiosk), "agent1", NEW_PASSWORD).status_code == 200
    r = sup.post("/api/staff/password", json={"staff_id": "nobody", "password": NEW_PASSWORD})
    assert r.status_code == 404
    assert audit_rows(kiosk, "staff_password_reset") == [
        ("staff_password_reset", "sup1", "agent1", None)]
    no_secrets_in_audit(kiosk, NEW_PASSWORD, PASSWORD)


def test_every_change_keeps_origin_and_csrf(kiosk, sup):
    changes = [("/api/staff", {"staff_id": "x1", "role": "agent", "password": NEW_PASSWORD}),
               ("/api/staff/disable", {"staff_id": "agent1"}),
               ("/api/staff/enable", {"staff_id": "agent1"}),
               ("/api/staff/unlock", {"staff_id": "agent1"}),
               ("/api/staff/password", {"staff_id": "agent1", "password": NEW_PASSWORD})]
    csrf = sup.headers.pop("X-CSRF-Token")
    for path, body in changes:
        r = sup.post(path, json=body)
        assert r.status_code == 403 and r.json()["error"] == "csrf", path
    sup.headers["X-CSRF-Token"] = csrf
    for origin in ("http://evil.example", "http://127.0.0.1:1"):
        for path, body in changes:
            r = sup.post(path, json=body, headers={"Origin": origin})
            assert r.status_code == 403 and r.json()["error"] == "csrf", (origin, path)
    r = sup.post("/api/staff/disable", json={"staff_id": "agent1", "extra": 1})
    assert r.status_code == 422
    assert kiosk.store.staff.get("x1") is None
    assert not kiosk.store.staff.get("agent1").disabled
    assert verify_password(PASSWORD, kiosk.store.staff.get("agent1").password_hash)


# -- the admin socket -------------------------------------------------------------------------
@pytest.fixture
def admin_server(kiosk, tmp_path):
    from edge.kiosk.routers.staff_admin import staff_admin

    path = tmp_path / "store.db.admin.sock"
    server = AdminSocketServer(path, staff_admin(kiosk.client.app.state.kiosk)).start()
    yield server
    server.stop()


def test_admin_socket_is_owner_only_and_serves_staff(kiosk, admin_server):
    mode = os.stat(admin_server.path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    reply = admin_request(admin_server.path, {"op": "list_staff"})
    assert reply["ok"] and {r["staff_id"] for r in reply["staff"]} == {"agent1", "eng1", "sup1"}
    encoded = hash_password(NEW_PASSWORD)
    reply = admin_request(admin_server.path, {"op": "upsert_staff", "name": "carol",
                                              "role": "agent", "password_hash": encoded})
    assert reply == {"ok": True}
    assert verify_password(NEW_PASSWORD, kiosk.store.staff.get("carol").password_hash)
    assert admin_request(admin_server.path, {"op": "set_disabled", "name": "carol",
                                             "disabled": True}) == {"ok": True}
    assert kiosk.store.staff.get("carol").disabled
    reply = admin_request(admin_server.path, {"op": "unlock_staff", "name": "nobody"})
    assert not reply["ok"] and reply["error"] == "not_found"
    assert audit_rows(kiosk, "staff_upserted", "staff_disabled")[-2:] == [
        ("staff_upserted", "provisioning", "carol", "agent"),
        ("staff_disabled", "provisioning", "carol", None)]
    no_secrets_in_audit(kiosk, NEW_PASSWORD)
    admin_server.stop()
    assert not Path(admin_server.path).exists()


def test_admin_socket_unlock_is_the_kiosks_unlock(kiosk, admin_server):
    agent = screen(kiosk)
    for _ in range(kiosk.services.settings.kiosk.max_login_failures):
        assert log_in(agent, "agent1", WRONG).status_code == 401
    assert log_in(agent, "agent1").status_code == 429
    reply = admin_request(admin_server.path, {"op": "unlock_staff", "name": "agent1"})
    assert reply == {"ok": True, "failures_cleared": 5}
    assert log_in(agent, "agent1").status_code == 200


@pytest.mark.parametrize("raw, code", [
    (b"not json", "bad_request"),
    (b'{"v": 2, "op": "list_staff"}', "bad_request"),
    (b'{"v": 1, "op": "drop_tables"}', "bad_request"),
    (b'{"v": 1, "op": "list_staff", "extra": 1}', "bad_request"),
    (b'{"v": 1, "op": "set_disabled", "name": "agent1", "disabled": "yes"}', "bad_request"),
    (b'{"v": 1, "op": "unlock_staff", "name": [[[[[["x"]]]]]]}', "bad_request"),
    (b'{"v": 1, "op": "upsert_staff", "name": "x1", "role": "agent", "password_hash": "plain"}',
     "bad_hash"),
    (b'{"v": 1, "op": "upsert_staff", "name": "bad name", "role": "agent", '
     b'"password_hash": "x"}', "staff_invalid"),
    (b'{"v": 1, "op": "upsert_staff", "name": "x1", "role": "god", "password_hash": "x"}',
     "staff_invalid"),
    (b'{"v": 1, "op": "list_staff", "pad": "' + b"x" * MAX_REQUEST + b'"}', "bad_request"),
])
def test_admin_socket_refuses_bad_requests(kiosk, raw, code):
    reply = handle(StaffAdmin(kiosk.store), raw)
    assert reply["ok"] is False and reply["error"] == code, reply
    assert kiosk.store.staff.get("x1") is None


def test_admin_socket_survives_a_garbage_client(kiosk, admin_server):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(admin_server.path))
        s.sendall(b"\xff" * (2 * MAX_REQUEST))
        answer = json.loads(s.recv(4096))
    assert answer["ok"] is False
    assert admin_request(admin_server.path, {"op": "list_staff"})["ok"]


CONNECT = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES"); raise SystemExit(0)
s.sendall(b'{"v": 1, "op": "list_staff"}\\n')
print(s.recv(4096).decode().strip())
"""


SYSTEM_PYTHON = "/usr/bin/python3"  # readable by any user (the venv may sit in root's home)


@pytest.mark.skipif(os.geteuid() != 0 or not Path(SYSTEM_PYTHON).exists(),
                    reason="needs root and /usr/bin/python3 to run a client as another user")
def test_admin_socket_answers_only_its_own_user(kiosk):
    import shutil
    import subprocess
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="cg-admin-", dir="/tmp"))
    try:
        folder.chmod(0o755)  # the folder lets anyone reach the socket: only the socket guards
        server = AdminSocketServer(folder / "admin.sock", StaffAdmin(kiosk.store)).start()
        try:
            def as_nobody() -> str:
                done = subprocess.run([SYSTEM_PYTHON, "-I", "-c", CONNECT, str(server.path)],
                                      user=65534, capture_output=True, text=True, timeout=30,
                                      cwd="/")
                assert done.returncode == 0, done.stderr[-1000:]
                return done.stdout.strip()

            assert as_nobody() == "EACCES"  # the socket file is 0600
            server.path.chmod(0o666)  # even with the file opened up, SO_PEERCRED refuses
            reply = json.loads(as_nobody())
            assert reply["ok"] is False and reply["error"] == "forbidden"
            assert "staff" not in reply
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_admin_socket_drops_a_slow_client_and_serves_the_next(kiosk, admin_server):
    import time

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        slow.connect(str(admin_server.path))
        slow.sendall(b'{"v": 1,')  # and then nothing more
        started = time.monotonic()
        slow.settimeout(10)
        assert slow.recv(4096) == b""  # closed without an answer once its time was up
        assert time.monotonic() - started < 5
    assert admin_request(admin_server.path, {"op": "list_staff"})["ok"]
