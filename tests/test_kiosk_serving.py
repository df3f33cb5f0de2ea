"""uvicorn settings for the kiosk (TLS from provisioning) and the kiosk camera adapter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edge.kiosk.camera import ReaderCamera
from edge.kiosk.serving import KioskTlsError, uvicorn_kwargs
from foundation.settings import KioskSettings


def test_plain_http_by_default():
    kw = uvicorn_kwargs(KioskSettings())
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8443
    assert "ssl_certfile" not in kw and kw["access_log"] is False


def test_tls_when_both_files_exist(tmp_path):
    cert, key = tmp_path / "kiosk.crt", tmp_path / "kiosk.key"
    cert.write_text("cert")
    key.write_text("key")
    kw = uvicorn_kwargs(KioskSettings(tls_cert_file=cert, tls_key_file=key))
    assert kw["ssl_certfile"] == str(cert) and kw["ssl_keyfile"] == str(key)


def test_tls_misconfiguration_is_refused_with_advice(tmp_path):
    with pytest.raises(KioskTlsError, match="both"):
        uvicorn_kwargs(KioskSettings(tls_cert_file=tmp_path / "c"))
    with pytest.raises(KioskTlsError, match="missing"):
        uvicorn_kwargs(KioskSettings(tls_cert_file=tmp_path / "c", tls_key_file=tmp_path / "k"))


@dataclass
class _Frame:
    image: np.ndarray


@dataclass
class _Stats:
    frame_age_s: float | None


class _Reader:
    def __init__(self, frame, age):
        self.frame, self.age = frame, age

    def wait_frame(self, after_seq, timeout):
        return self.frame

    def stats(self):
        return _Stats(self.age)


def test_reader_camera_returns_fresh_frames_only():
    image = np.zeros((4, 4, 3), np.uint8)
    assert ReaderCamera(_Reader(_Frame(image), 0.1)).latest() is image
    assert ReaderCamera(_Reader(_Frame(image), 5.0), max_age_s=2.0).latest() is None
    assert ReaderCamera(_Reader(None, None)).latest() is None
