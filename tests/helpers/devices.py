"""Test devices on free ports: nothing a test starts or probes may meet another run's peer.

A device keeps the default endpoints (the gate controller's ipc sockets in /run/consentgate,
central's and the kiosk's default ports) unless told otherwise, and a peer left over from another
run on this machine would then answer a test's device. `free_port_settings()` gives every one
of them a port that is free now; `merged` lays a test's own overrides over them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from foundation.peers import free_ports
from provisioning.device import init_device


def free_port_settings() -> dict[str, Any]:
    """Settings overrides: gate endpoints, central's endpoint and the kiosk port, all free."""
    cmd, evt, sim, central, kiosk = free_ports(5)
    return {"gate": {"command_endpoint": f"tcp://127.0.0.1:{cmd}",
                     "event_endpoint": f"tcp://127.0.0.1:{evt}",
                     "sim_control_endpoint": f"tcp://127.0.0.1:{sim}"},
            "telemetry": {"central_endpoint": f"tcp://127.0.0.1:{central}"},
            "kiosk": {"port": kiosk}}


def merged(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """`over` laid over `base`, section by section (nested dicts merged, the rest replaced)."""
    out = dict(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def daemon_device(tmp_path: Path, model_dir: Path, **extra: Any) -> tuple[Path, int]:
    """A device for the daemon tests (synthetic cameras, no telemetry, plain-HTTP kiosk on a
    free port): (its settings file, the kiosk port)."""
    overrides = merged(free_port_settings(), {
        "logging": {"level": "info", "json_logs": True},
        "telemetry": {"enabled": False},
        "kiosk": {"tls_cert_file": None, "tls_key_file": None},
        "capture": {"visible_source": "synthetic", "fps": 5},
        "thermal": {"enabled": True, "source": "synthetic"},
    })
    overrides.update(extra)  # a section given here replaces the default one, as before
    device = init_device(tmp_path / "device", "T-1", model_dir=model_dir, overrides=overrides)
    return device.settings_file, device.settings.kiosk.port
