"""Issue 13's log-in attacks from the box's loopback, each replayed against the real kiosk app.

Failed log-ins slow the guesser down (back-off per name and screen, a per-name slow-down that
only ever delays screens that got it wrong) but never keep the right password out; screens that
share 127.0.0.1 are told apart by their device cookie; a supervisor can unlock a name; and every
state-changing request, log-in included, must carry one of the kiosk's configured origins.
"""

from __future__ import annotations

import warnings

import pytest
from helpers.kiosk import PASSWORD, make_env

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from edge.kiosk.devices import DEVICE_COOKIE, DeviceTable
from edge.kiosk.origins import kiosk_origins, origin_allowed
from foundation.settings import KioskSettings, Settings

PORT = KioskSettings().port  # the default settings' kiosk port (no server listens: TestClient)
ORIGIN = f"http://127.0.0.1:{PORT}"  # the default settings' kiosk (no TLS)
WRONG = "wrong-password-x"


def screen(env, address: str = "127.0.0.1", *, visit: bool = True,
           origin: str = ORIGIN, base_url: str = "http://testserver") -> TestClient:
    """One kiosk screen (a browser) at `address`; `visit` loads the page first, which gives it
    its device cookie."""
    client = TestClient(env.client.app, base_url=base_url, headers={"Origin": origin},
                        client=(address, 50000))
    if visit:
        assert client.get("/").status_code == 200
    return client


def log_in(client: TestClient, name: str, password: str = PASSWORD):
    return client.post("/api/session/login", json={"staff_id": name, "password": password})


def fail_patiently(env, client: TestClient, name: str, times: int) -> int:
    """`times` wrong passwords, waiting out each back-off as a patient attacker would; returns
    the longest wait asked for."""
    longest = 0
    done = 0
    while done < times:
        r = log_in(client, name, WRONG)
        if r.status_code == 429:
            wait = int(r.headers["retry-after"])
            longest = max(longest, wait)
            env.clock.advance(wait)
            continue
        assert r.status_code == 401, r.text
        done += 1
    return longest


def test_failed_logins_do_not_lock_out_the_right_password(kiosk):
    k = kiosk.services.settings.kiosk
    attacker = screen(kiosk)
    longest = fail_patiently(kiosk, attacker, "agent1", 3 * k.login_name_slow_after)
    assert 0 < longest <= k.login_backoff_max_s  # slowed down, never locked
    # the agent's own screen on the same box: the right password works at once
    agent = screen(kiosk)
    assert attacker.cookies[DEVICE_COOKIE] != agent.cookies[DEVICE_COOKIE]
    assert log_in(agent, "agent1").status_code == 200

    # the agent mistypes on their own screen while the attack goes on: the next try waits,
    # the password unchecked, at most the longest back-off after the agent's own failure ...
    ceiling = max(k.login_backoff_max_s, k.login_name_delay_max_s)
    fail_patiently(kiosk, agent, "agent1", k.max_login_failures)
    r = log_in(agent, "agent1")
    assert r.status_code == 429 and r.json()["error"] == "locked_out"
    wait = int(r.headers["retry-after"])
    assert 0 < wait <= ceiling
    assert "second" in r.json()["message"] and "unlock" in r.json()["message"]
    # ... whatever the attacker does meanwhile (fresh screens, more guesses) ...
    for _ in range(4):
        log_in(screen(kiosk), "agent1", WRONG)
        log_in(attacker, "agent1", WRONG)
    # ... and then the right password succeeds
    kiosk.clock.advance(ceiling)
    assert log_in(agent, "agent1").status_code == 200


def test_one_address_cannot_lock_every_supervisor(kiosk):
    own = screen(kiosk)  # the box's own kiosk screen, its page loaded at start
    # 40 failures over every name from 127.0.0.1 (twice the old per-address lock), without
    # a device cookie, then with cookies minted in a loop
    attacker = screen(kiosk, visit=False)
    for name in ("sup1", "agent1", "eng1", "nobody", "admin"):
        fail_patiently(kiosk, attacker, name, 8)
    for _ in range(3 * kiosk.services.settings.kiosk.new_screens_per_address):
        fresh = screen(kiosk)
        log_in(fresh, "sup1", WRONG)
    # the supervisor's screen on the box itself and one on the LAN: in at once
    assert log_in(own, "sup1").status_code == 200
    assert log_in(screen(kiosk, "10.20.0.7", visit=False), "sup1").status_code == 200
    assert log_in(screen(kiosk, "10.20.0.8"), "agent1").status_code == 200


def test_device_cookies_are_bounded_and_keep_screens_in_use(fake_clock):
    table = DeviceTable(fake_clock, max_devices=4, per_address=3)
    used = table.issue("127.0.0.1")
    table.trust(used)
    assert table.lookup(used) is not None
    minted = [table.issue("127.0.0.1") for _ in range(10)]
    assert sum(t is not None for t in minted) == 2  # then none for an hour
    for i in range(20):
        table.issue(f"10.0.0.{i}")
    assert len(table) == 4
    assert table.lookup(used) is not None  # the screen staff log in from was kept
    fake_clock.advance(3601)
    assert table.issue("127.0.0.1") is not None
    assert table.client_key("127.0.0.1", "forged") == "127.0.0.1|-"


def test_supervisor_unlocks_a_name(kiosk):
    agent = screen(kiosk)
    for _ in range(kiosk.services.settings.kiosk.max_login_failures + 2):
        log_in(agent, "agent1", WRONG)
    assert log_in(agent, "agent1").status_code == 429

    other_agent = screen(kiosk)
    info = log_in(other_agent, "agent1").json()
    r = other_agent.post("/api/session/unlock", json={"staff_id": "agent1"},
                         headers={"X-CSRF-Token": info["csrf_token"]})
    assert r.status_code == 403 and r.json()["error"] == "wrong_role"

    sup = screen(kiosk, "10.20.0.9")
    info = log_in(sup, "sup1").json()
    csrf = {"X-CSRF-Token": info["csrf_token"]}
    r = sup.post("/api/session/unlock", json={"staff_id": "agent1"})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    r = sup.post("/api/session/unlock", json={"staff_id": "nobody-here"}, headers=csrf)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = sup.post("/api/session/unlock", json={"staff_id": "agent1"}, headers=csrf)
    assert r.status_code == 200, r.text
    failures = r.json()["failures_cleared"]
    assert failures >= kiosk.services.settings.kiosk.max_login_failures
    rows = kiosk.store.db.read("SELECT event, actor, subject, reason FROM audit "
                               "WHERE event = 'staff_unlocked'")
    assert rows == [("staff_unlocked", "sup1", "agent1", f"failures={failures}")]
    assert log_in(agent, "agent1").status_code == 200  # at once, no wait left


def _tls_env(kiosk_store, kiosk_engine, fake_clock, tmp_path):
    from provisioning.tls import kiosk_names, write_self_signed

    cert, key = tmp_path / "kiosk.crt", tmp_path / "kiosk.key"
    write_self_signed(cert, key, "kiosk-test", fake_clock.now(),
                      hosts=kiosk_names(["gate-b12.airport.lan", "10.20.0.5"]))
    settings = Settings.model_validate({"kiosk": {"tls_cert_file": str(cert),
                                                  "tls_key_file": str(key),
                                                  "host": "0.0.0.0"}})
    return make_env(kiosk_store, kiosk_engine, fake_clock, settings)


def test_http_origin_is_refused_on_the_https_kiosk(kiosk_store, kiosk_engine, fake_clock,
                                                   tmp_path):
    env = _tls_env(kiosk_store, kiosk_engine, fake_clock, tmp_path)
    refused = (f"http://127.0.0.1:{PORT}", f"http://gate-b12.airport.lan:{PORT}",
               "https://gate-b12.airport.lan", f"https://gate-b12.airport.lan:{PORT + 1}",
               f"https://evil.example:{PORT}", "https://testserver", "null")
    for origin in refused:
        client = screen(env, origin=origin, base_url="https://testserver", visit=False)
        r = log_in(client, "sup1")
        assert r.status_code == 403 and r.json()["error"] == "csrf", origin
        assert "set-cookie" not in r.headers
    for origin in (f"https://127.0.0.1:{PORT}", f"https://localhost:{PORT}",
                   f"https://gate-b12.airport.lan:{PORT}", f"https://10.20.0.5:{PORT}",
                   f"https://GATE-B12.airport.lan:{PORT}"):
        client = screen(env, origin=origin, base_url="https://testserver")
        r = log_in(client, "sup1")
        assert r.status_code == 200, (origin, r.text)
        csrf = {"X-CSRF-Token": r.json()["csrf_token"]}
        assert client.post("/api/enrolments/refusal", headers=csrf).status_code == 200
        r = client.post("/api/enrolments/refusal",
                        headers={**csrf, "Origin": "http://" + origin.split("://")[1]})
        assert r.status_code == 403 and r.json()["error"] == "csrf"


def test_login_requires_a_matching_origin(kiosk):
    def attempt(**headers):
        client = screen(kiosk, visit=False)
        del client.headers["Origin"]
        return client.post("/api/session/login",
                           json={"staff_id": "sup1", "password": PASSWORD}, headers=headers)

    for headers in ({}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Sec-Fetch-Site": "none"}, {"Origin": "null"},
                    {"Origin": "http://testserver"},  # the request's own Host: not enough
                    {"Origin": "http://127.0.0.1:9999"}, {"Origin": f"https://127.0.0.1:{PORT}"},
                    {"Origin": f"http://127.0.0.1:{PORT}/page"},
                    {"Origin": f"http://user@127.0.0.1:{PORT}"},
                    {"Origin": "http://evil.example", "Host": "evil.example"}):
        r = attempt(**headers)
        assert r.status_code == 403 and r.json()["error"] == "csrf", headers
        assert "set-cookie" not in r.headers
    # refused before the password is looked at: nothing was counted against sup1
    assert kiosk.client.app.state.kiosk.throttle.failures("sup1") == 0
    r = attempt(**{"Sec-Fetch-Site": "same-origin"})  # a same-origin fetch without Origin
    assert r.status_code == 200
    for origin in (ORIGIN, f"http://localhost:{PORT}", f"http://[::1]:{PORT}"):
        assert attempt(Origin=origin).status_code == 200, origin


def test_configured_origins_never_use_the_request_host():
    plain = kiosk_origins(KioskSettings())
    assert ("http", "127.0.0.1", PORT) in plain and ("http", "localhost", PORT) in plain
    assert not origin_allowed("http://testserver", None, plain)
    lan = kiosk_origins(KioskSettings(host="10.20.0.5", port=443,
                                      extra_origins=["https://kiosk.example:9443"]))
    assert origin_allowed("http://10.20.0.5:443", None, lan)
    assert not origin_allowed("http://10.20.0.5", None, lan)  # port 80 is not 443
    lan_http = kiosk_origins(KioskSettings(host="10.20.0.5", port=80))
    assert origin_allowed("http://10.20.0.5", None, lan_http)
    assert not origin_allowed("http://127.0.0.1", None, lan_http)  # bound to the LAN only
    assert origin_allowed("https://kiosk.example:9443", None, lan)
    assert not origin_allowed(None, None, lan)
    assert origin_allowed(None, "same-origin", lan)
    with pytest.raises(ValueError):
        KioskSettings(extra_origins=["kiosk.example"])
