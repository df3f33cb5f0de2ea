"""`python -m edge run` as a real process: refuses a wrong store key, tells systemd READY,
serves /healthz and /metrics, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers.devices import daemon_device

from edge.consent.keys import write_key_file
from foundation.peers import Peer, daemon_argv

ROOT = Path(__file__).resolve().parents[1]


def test_wrong_store_key_refuses_to_start(tmp_path: Path, installed_model_dir: Path) -> None:
    settings_file, _ = daemon_device(tmp_path, installed_model_dir)
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
    settings_file, port = daemon_device(tmp_path, installed_model_dir)
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(60)
    env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"}
    proc = Peer("daemon", daemon_argv(settings_file), tmp_path / "daemon.log", env=env,
                cwd=ROOT).start()
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
        output = proc.output()
        assert "daemon_stopped" in output and "Traceback" not in output
    finally:
        proc.kill()
        sock.close()
