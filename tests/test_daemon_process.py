"""`python -m edge run` as a real process: refuses a wrong store key, tells systemd READY,
serves /healthz and /metrics, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from demo.day import free_ports
from edge.consent.keys import write_key_file
from provisioning.device import init_device

ROOT = Path(__file__).resolve().parents[1]


def provision(tmp_path: Path, model_dir: Path, **extra) -> tuple[Path, int]:
    gate_cmd, gate_evt, sim, kiosk = free_ports(4)
    overrides = {
        "logging": {"level": "info", "json_logs": True},
        "gate": {"command_endpoint": f"tcp://127.0.0.1:{gate_cmd}",
                 "event_endpoint": f"tcp://127.0.0.1:{gate_evt}",
                 "sim_control_endpoint": f"tcp://127.0.0.1:{sim}"},
        "telemetry": {"enabled": False},
        "kiosk": {"port": kiosk, "tls_cert_file": None, "tls_key_file": None},
        "capture": {"visible_source": "synthetic", "fps": 5},
        "thermal": {"enabled": True, "source": "synthetic"},
        **extra,
    }
    device = init_device(tmp_path / "device", "T-1", model_dir=model_dir, overrides=overrides)
    return device.settings_file, kiosk


def test_wrong_store_key_refuses_to_start(tmp_path: Path, installed_model_dir: Path) -> None:
    settings_file, _ = provision(tmp_path, installed_model_dir)
    key = tmp_path / "device" / "keys" / "store.key"
    store = tmp_path / "device" / "store.db"
    before = store.read_bytes()
    key.unlink()
    write_key_file(key)  # a valid key, but not this store's
    proc = subprocess.run([sys.executable, "-m", "edge", "run", "--config", str(settings_file)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "key" in lines[-1]
    assert "Traceback" not in proc.stderr
    assert store.read_bytes() == before  # refused without touching the store


@pytest.mark.integration
def test_ready_health_metrics_and_sigterm(tmp_path: Path, installed_model_dir: Path) -> None:
    settings_file, port = provision(tmp_path, installed_model_dir)
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(60)
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="2000000")
    proc = subprocess.Popen([sys.executable, "-m", "edge", "run", "--config",
                             str(settings_file)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        messages = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        messages.append(sock.recv(4096).decode())
        assert any("WATCHDOG=1" in m for m in messages)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(base + "/healthz", timeout=10)
        # no gate controller is running: the daemon is up but degraded, and says why
        assert health.status_code == 503
        body = health.json()
        assert body["gate_controller"] == "down" and body["lanes"] == {"A": "manual"}
        assert body["inference_loop"] == "ok"
        page = httpx.get(base + "/", timeout=10)  # the kiosk is served by the same uvicorn
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        time.sleep(1.0)
        metrics = httpx.get(base + "/metrics", timeout=10)
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = metrics.text
        assert "consentgate_frames_processed_total" in text
        assert 'consentgate_lane_state{lane="A",state="manual"} 1' in text
        assert "consentgate_decision_latency_seconds_bucket" in text
        for line in text.splitlines():
            assert line.startswith(("# HELP consentgate_", "# TYPE consentgate_",
                                    "consentgate_")), line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        rest = []
        sock.settimeout(1)
        try:
            while True:
                rest.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
        assert any("STOPPING=1" in m for m in rest)
        stderr = proc.stderr.read()
        assert "daemon_stopped" in stderr and "Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
