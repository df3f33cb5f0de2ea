"""Prometheus exposition of the daemon's metrics, and sd_notify over a unix datagram socket."""

from __future__ import annotations

import socket
from pathlib import Path

from edge.operations.metrics import DaemonMetrics, Registry
from edge.operations.sdnotify import SdNotifier


def test_text_format_counters_gauges_histograms() -> None:
    r = Registry()
    c = r.counter("decisions_total", "help")
    c.inc(kind="granted")
    c.inc(2, kind="granted")
    c.inc(kind='we"ird\nlabel')
    g = r.gauge("up", "help", callback=lambda: {(("lane", "A"),): 1.0})
    g.set(0.5, lane="B")
    h = r.histogram("latency_seconds", "help", buckets=(0.1, 0.5))
    for v in (0.05, 0.2, 0.2, 3.0):
        h.observe(v)
    text = r.render()
    assert "# TYPE consentgate_decisions_total counter" in text
    assert 'consentgate_decisions_total{kind="granted"} 3' in text
    assert r'consentgate_decisions_total{kind="we\"ird\nlabel"} 1' in text
    assert 'consentgate_up{lane="A"} 1' in text and 'consentgate_up{lane="B"} 0.5' in text
    assert 'consentgate_latency_seconds_bucket{le="0.1"} 1' in text
    assert 'consentgate_latency_seconds_bucket{le="0.5"} 3' in text
    assert 'consentgate_latency_seconds_bucket{le="+Inf"} 4' in text
    assert "consentgate_latency_seconds_count 4" in text
    assert text.endswith("\n")


def test_daemon_metric_names_use_prefix_and_base_units() -> None:
    text = DaemonMetrics().registry.render()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert all(n.startswith("consentgate_") for n in names)
    assert "consentgate_decision_latency_seconds" in names
    assert not any(n.endswith(("_ms", "_milliseconds")) for n in names)


def test_sd_notify_ready_watchdog_stopping(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    n = SdNotifier()
    assert n.enabled and n.watchdog_interval_s() == 2.0
    assert n.ready("lanes 1") and n.watchdog() and n.stopping()
    got = [server.recv(1024).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=lanes 1", "WATCHDOG=1", "STOPPING=1"]
    n.close()
    server.close()


def test_sd_notify_without_socket_is_a_noop(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    n = SdNotifier()
    assert not n.enabled and not n.ready() and n.watchdog_interval_s() is None
    assert n.notify("READY=1") is False


def test_sd_notify_abstract_namespace() -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0consentgate-test-notify")
    server.settimeout(2)
    n = SdNotifier("@consentgate-test-notify")
    assert n.ready()
    assert server.recv(64) == b"READY=1"
    server.close()
