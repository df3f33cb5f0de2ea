"""The daemon serves the kiosk with the kiosk's own uvicorn settings: a half-configured or
missing TLS certificate stops the start with a clear error, never a plain-HTTP kiosk."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.daemon import Daemon
from edge.kiosk.serving import KioskTlsError
from foundation.clock import FakeClock
from foundation.settings import Settings


def _settings(tmp_path: Path, **kiosk) -> Settings:
    return Settings.model_validate({"device": {"data_dir": str(tmp_path / "data")},
                                    "kiosk": kiosk})


@pytest.mark.parametrize("which", ["cert_only", "key_only", "missing_files"])
def test_bad_kiosk_tls_settings_stop_the_start_before_anything_opens(tmp_path, which):
    cert, key = tmp_path / "kiosk.crt", tmp_path / "kiosk.key"
    kiosk = {"cert_only": {"tls_cert_file": str(cert)},
             "key_only": {"tls_key_file": str(key)},
             "missing_files": {"tls_cert_file": str(cert), "tls_key_file": str(key)}}[which]
    if which != "missing_files":
        cert.write_text("x")
        key.write_text("x")
    with pytest.raises(KioskTlsError):
        Daemon.build(_settings(tmp_path, **kiosk), FakeClock(), engine=object())
    assert not (tmp_path / "data").exists()  # refused before the store was even looked for

