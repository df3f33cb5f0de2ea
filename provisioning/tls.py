"""Self-signed TLS certificate for the kiosk (ECDSA P-256), written at provisioning."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_DAYS = 825


def write_self_signed(cert_path: Path, key_path: Path, common_name: str, now: float,
                      days: int = DEFAULT_DAYS, hosts: tuple[str, ...] = ("localhost",
                                                                         "127.0.0.1")) -> None:
    """Write a fresh key (0600, PEM) and a self-signed certificate valid from `now`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "consentgate kiosk")])
    start = dt.datetime.fromtimestamp(now, tz=dt.UTC) - dt.timedelta(minutes=5)
    alt: list[x509.GeneralName] = []
    for h in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem_key)
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def certificate_days_left(cert_path: Path, now: float) -> float:
    """Days until the certificate expires (negative when expired)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    end = cert.not_valid_after_utc.timestamp()
    return (end - now) / 86400.0
