"""Helpers shared by the provisioning tests: throwaway devices (on free ports), CLI runs."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from helpers.devices import free_port_settings, merged
from provisioning.cli import main as provisioning_main
from provisioning.device import Device, init_device


def make_device(tmp_path: Path, gate_id: str = "B12", model_dir: Path | None = None,
                **kwargs) -> Device:
    """A provisioned device in tmp_path/dev; models default to a private empty folder. Its gate
    endpoints, central endpoint and kiosk port are free loopback ports (tests' `overrides`
    win), so no check of it can reach another run's gate controller or collector."""
    if model_dir is None:
        model_dir = tmp_path / "models"
        model_dir.mkdir(parents=True, exist_ok=True)
    kwargs["overrides"] = merged(free_port_settings(), kwargs.get("overrides"))
    return init_device(tmp_path / "dev", gate_id, model_dir=model_dir, **kwargs)


class FakeStdin(io.StringIO):
    """stdin that may claim to be a terminal."""

    def __init__(self, text: str = "", tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run_cli(argv: list[str], stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    """Run `python -m provisioning ARGV` in-process; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", FakeStdin(stdin))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = provisioning_main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def secret_strings(device: Device) -> list[str]:
    """Every secret the device holds, as text that must never appear in output or logs."""
    lay = device.layout
    found = [lay.store_key.read_text().strip(), lay.ref_key.read_text().strip()]
    for line in lay.device_secret_key.read_text().splitlines():
        if "secret-key" in line:
            found.append(line.split("=", 1)[1].strip().strip('"'))
    pem = lay.tls_key.read_text()
    found += [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    return found
