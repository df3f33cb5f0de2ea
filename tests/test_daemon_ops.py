"""`/metrics` carries raw real-time decision counts, so only loopback clients may read it."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from edge.operations.health import is_loopback, mount_ops, ops_router
from edge.operations.metrics import DaemonMetrics


def _app() -> FastAPI:
    return mount_ops(FastAPI(), ops_router(DaemonMetrics(), lambda: {"status": "ok"}))


def test_metrics_answer_loopback_clients() -> None:
    client = TestClient(_app(), client=("127.0.0.1", 40000))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "consentgate_" in response.text


def test_metrics_refuse_other_clients_with_a_clear_reason() -> None:
    client = TestClient(_app(), client=("192.0.2.7", 40000))
    response = client.get("/metrics")
    assert response.status_code == 403
    assert response.json()["error"] == "metrics_local_only"
    assert "consentgate_" not in response.text
    assert client.get("/healthz").status_code == 200  # health stays reachable


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    for host in ("10.0.0.1", "192.168.1.5", "testclient", "", None, "::ffff:10.0.0.1"):
        assert not is_loopback(host)
