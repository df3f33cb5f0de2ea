"""A provisioned device runs the real daemon: after staff, enrolment and a key rotation it
starts, serves the kiosk over the provisioned TLS certificate and loads the enrolled gallery."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from helpers.provisioning import make_device, run_cli

from edge.consent.store import ConsentStore
from foundation.clock import SystemClock
from foundation.peers import Peer, daemon_argv, free_port
from provisioning.loopback import LoopbackPeers


def _wait_healthy(url: str, cert: Path, proc: Peer, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last: object = None
    pinned = ssl.create_default_context(cafile=str(cert))  # trust only the provisioned cert
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            r = httpx.get(url, verify=pinned, timeout=1.0)
            if r.status_code == 200:
                return r.json()
            last = r.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"daemon never became healthy (last: {last!r}, rc={proc.poll()})")


@pytest.mark.integration
def test_daemon_starts_from_provisioned_and_rotated_device(tmp_path: Path, monkeypatch,
                                                           installed_model_dir: Path) -> None:
    port = free_port()
    dev = make_device(tmp_path, model_dir=installed_model_dir,
                      overrides={"capture": {"fps": 4}, "kiosk": {"port": port},
                                 "logging": {"json_logs": True}})
    code, _, err = run_cli(["add-staff", "agent1", "--role", "agent", "--dir",
                            str(dev.layout.root)], stdin="a long enough password\n",
                           monkeypatch=monkeypatch)
    assert code == 0, err
    vec = np.random.default_rng(1).normal(size=512).astype(np.float32)
    clock = SystemClock()
    with ConsentStore.from_settings(dev.settings, clock) as store:
        consent = store.grant_consent("PNR9", "boarding", "XY1", clock.now() + 3600, "agent1")
        store.enrol(consent.consent_id, [vec / np.linalg.norm(vec)], "fr_feature", "agent1")
    code, _, err = run_cli(["rotate-key", "--dir", str(dev.layout.root)])
    assert code == 0, err

    with LoopbackPeers(dev) as peers:
        proc = Peer("daemon", daemon_argv(peers.device.settings_file, duration_s=60),
                    tmp_path / "daemon.log").start()
        try:
            health = _wait_healthy(f"https://127.0.0.1:{port}/healthz", dev.layout.tls_cert,
                                   proc, timeout=60)
        finally:
            rc = proc.stop(30)
            out = proc.output()
    assert rc == 0, out[-2000:]
    assert health["status"] == "ok" and health["gate_controller"] == "up"
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    loaded = [e for e in events if e.get("event") == "gallery_loaded"]
    assert loaded and loaded[0]["templates"] == 1  # the enrolment survived the rotation
    assert any(e.get("event") == "daemon_started" for e in events)
