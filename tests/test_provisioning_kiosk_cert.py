"""Kiosk certificate names: `init --kiosk-name`, `renew-kiosk-cert`, and verify's TLS check."""

from __future__ import annotations

import ipaddress
import json
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from helpers.provisioning import make_device, run_cli

from foundation.clock import FakeClock
from provisioning.device import update_settings
from provisioning.errors import KioskNameError
from provisioning.kiosk_cert import renew_kiosk_cert
from provisioning.tls import kiosk_names


def sans(cert: Path) -> tuple[set[str], set[str]]:
    """(DNS names, IP addresses) of a certificate's subjectAltName, parsed with cryptography."""
    c = x509.load_pem_x509_certificate(cert.read_bytes())
    san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (set(san.get_values_for_type(x509.DNSName)),
            {str(a) for a in san.get_values_for_type(x509.IPAddress)})


def test_default_certificate_names_loopback_only(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    assert sans(dev.layout.tls_cert) == ({"localhost"}, {"127.0.0.1"})


def test_init_kiosk_names_go_into_the_certificate(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    code, out, err = run_cli(["init", "--dir", str(tmp_path / "dev"), "--gate-id", "B12",
                              "--model-dir", str(tmp_path / "models"),
                              "--kiosk-name", "192.168.10.20", "--kiosk-name",
                              "Gate-B12.Airport.LAN", "--kiosk-name", "fd00::20"])
    assert code == 0, err
    dns, ips = sans(tmp_path / "dev" / "tls" / "kiosk.crt")
    assert dns == {"localhost", "gate-b12.airport.lan"}
    assert ips == {"127.0.0.1", "192.168.10.20", "fd00::20"}
    assert "192.168.10.20" in out
    c = x509.load_pem_x509_certificate((tmp_path / "dev" / "tls" / "kiosk.crt").read_bytes())
    ip_values = c.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("192.168.10.20") in ip_values  # a real iPAddress entry


@pytest.mark.parametrize("bad", ["https://10.0.0.5", "10.0.0.5:8443", "", "gate b12",
                                 "-gate.lan", "10.0.0.999", "gate/b12"])
def test_bad_kiosk_name_is_refused_before_anything_is_written(tmp_path: Path, bad: str) -> None:
    with pytest.raises(KioskNameError, match="neither an IP address nor a DNS name"):
        kiosk_names([bad])
    code, _out, err = run_cli(["init", "--dir", str(tmp_path / "dev"), "--gate-id", "B12",
                               f"--kiosk-name={bad}"])
    assert code == 1 and "--kiosk-name" in err and "e.g. 192.168.10.20" in err
    assert not (tmp_path / "dev").exists()


def test_renew_replaces_only_the_certificate_and_key(tmp_path: Path) -> None:
    dev = make_device(tmp_path, kiosk_names=["10.1.2.3"])
    lay = dev.layout
    old_key, old_cert = lay.tls_key.read_bytes(), lay.tls_cert.read_bytes()
    others = {p: p.read_bytes() for p in lay.root.rglob("*")
              if p.is_file() and p not in (lay.tls_key, lay.tls_cert)}
    code, out, err = run_cli(["renew-kiosk-cert", "--dir", str(lay.root),
                              "--kiosk-name", "gate-b12.lan", "--kiosk-name", "10.9.9.9"])
    assert code == 0, err
    assert "gate-b12.lan" in out and "restart the daemon" in out
    assert lay.tls_key.read_bytes() != old_key and lay.tls_cert.read_bytes() != old_cert
    assert stat.S_IMODE(lay.tls_key.stat().st_mode) == 0o600
    assert sans(lay.tls_cert) == ({"localhost", "gate-b12.lan"}, {"127.0.0.1", "10.9.9.9"})
    assert {p: p.read_bytes() for p in others} == others  # nothing else touched
    assert sorted(p.name for p in lay.tls_dir.iterdir()) == ["kiosk.crt", "kiosk.key"]
    assert old_key.decode() not in out + err
    # the new key pairs with the new certificate
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    key = load_pem_private_key(lay.tls_key.read_bytes(), None)
    cert = x509.load_pem_x509_certificate(lay.tls_cert.read_bytes())
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_renew_without_names_keeps_the_current_ones(tmp_path: Path) -> None:
    dev = make_device(tmp_path, kiosk_names=["10.1.2.3", "kiosk.lan"])
    before = sans(dev.layout.tls_cert)
    renewed = renew_kiosk_cert(dev)
    assert sans(dev.layout.tls_cert) == before
    assert set(renewed.names) == before[0] | before[1]


def test_renew_shreds_the_old_key(tmp_path: Path, monkeypatch) -> None:
    dev = make_device(tmp_path)
    shredded: list[Path] = []
    from provisioning import kiosk_cert

    real = kiosk_cert.shred_file
    monkeypatch.setattr(kiosk_cert, "shred_file", lambda p: shredded.append(Path(p)) or real(p))
    renew_kiosk_cert(dev, ["10.0.0.1"])
    assert dev.layout.tls_key in shredded


def test_renew_with_a_bad_name_changes_nothing(tmp_path: Path) -> None:
    dev = make_device(tmp_path)
    before = (dev.layout.tls_key.read_bytes(), dev.layout.tls_cert.read_bytes())
    code, _out, err = run_cli(["renew-kiosk-cert", "--dir", str(dev.layout.root),
                               "--kiosk-name", "http://gate"])
    assert code == 1 and "--kiosk-name" in err
    assert (dev.layout.tls_key.read_bytes(), dev.layout.tls_cert.read_bytes()) == before


def _tls(dev) -> tuple[int, dict]:
    code, out, _err = run_cli(["verify", "--dir", str(dev.layout.root), "--json",
                               "--only", "tls"])
    report = json.loads(out.strip().splitlines()[-1])
    return code, next(r for r in report["results"] if r["name"] == "kiosk TLS certificate")


def test_verify_reports_names_and_days(tmp_path: Path) -> None:
    dev = make_device(tmp_path, kiosk_names=["10.1.2.3"])
    code, item = _tls(dev)
    assert code == 0 and item["status"] == "pass"
    assert "localhost, 127.0.0.1, 10.1.2.3" in item["detail"]
    days = int(item["detail"].split("valid for ")[1].split()[0])
    assert 820 <= days <= 825


def test_verify_fails_an_expired_certificate_and_renew_fixes_it(tmp_path: Path) -> None:
    dev = make_device(tmp_path, kiosk_names=["10.1.2.3"])
    renew_kiosk_cert(dev, clock=FakeClock(start=time.time() - 900 * 86400))
    code, item = _tls(dev)
    assert code == 1 and item["status"] == "fail"
    assert "expired" in item["detail"] and "10.1.2.3" in item["detail"]
    assert "renew-kiosk-cert" in item["fix"]
    renew_kiosk_cert(dev)
    assert _tls(dev)[1]["status"] == "pass"


def test_verify_fails_when_kiosk_host_is_not_named(tmp_path: Path) -> None:
    dev = update_settings(make_device(tmp_path), {"kiosk": {"host": "10.7.7.7"}})
    code, item = _tls(dev)
    assert code == 1 and "10.7.7.7" in item["detail"]
    assert "--kiosk-name 10.7.7.7" in item["fix"]
    renew_kiosk_cert(dev, ["10.7.7.7"])
    assert _tls(dev)[1]["status"] == "pass"
    wildcard = update_settings(dev, {"kiosk": {"host": "0.0.0.0"}})
    assert _tls(wildcard)[1]["status"] == "pass"
