"""Schemathesis against the kiosk's OpenAPI schema: no route answers 5xx, whatever is sent.

The generated requests go over real HTTP to the app on uvicorn, as a logged-in supervisor (the
widest role) with a valid CSRF token, so they reach the handlers instead of stopping at the
log-in check. Bounded: a few examples per operation; the live stream gets a short life.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from helpers.kiosk import PASSWORD, LiveServer, make_env
from hypothesis import HealthCheck, settings

from edge.kiosk.app import create_app
from edge.kiosk.board import LaneBoard
from edge.kiosk.services import KioskServices
from foundation.clock import FakeClock
from foundation.peers import free_port
from foundation.settings import Settings


def _schema_only() -> dict:
    """The OpenAPI document (building it touches no service)."""
    clock = FakeClock()
    services = KioskServices(Settings(), clock, store=None, engine=None,  # type: ignore[arg-type]
                             board=LaneBoard(["A"], clock))
    return create_app(services).openapi()


schema = schemathesis.openapi.from_dict(_schema_only())


@pytest.fixture
def served(kiosk_store, kiosk_engine, fake_clock):
    port = free_port()  # named in the settings: requests carry the kiosk's own Origin
    env = make_env(kiosk_store, kiosk_engine, fake_clock, port=port)
    app = create_app(env.services, stream_life_s=0.2)
    with LiveServer(app, port=port) as server:
        r = httpx.post(server.url + "/api/session/login",
                       json={"staff_id": "sup1", "password": PASSWORD},
                       headers={"Origin": server.origin}, timeout=10)
        assert r.status_code == 200
        yield {"base_url": server.url,
               "cookies": {"cg_session": r.cookies["cg_session"]},
               "headers": {"X-CSRF-Token": r.json()["csrf_token"], "Origin": server.origin}}


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_server_errors(case, served):
    response = case.call(base_url=served["base_url"], headers=served["headers"],
                         cookies=served["cookies"], timeout=20)
    assert response.status_code < 500, (case.method, case.path, response.status_code,
                                        response.text[:300])
