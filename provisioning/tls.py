"""Self-signed TLS certificate for the kiosk (ECDSA P-256), written at provisioning.

The certificate always names localhost and 127.0.0.1; `init --kiosk-name` and
`renew-kiosk-cert --kiosk-name` add the names kiosk screens on other machines use to reach the
box (its LAN address or DNS name), validated here by `kiosk_names`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioning.errors import KioskNameError

DEFAULT_DAYS = 825
BASE_HOSTS = ("localhost", "127.0.0.1")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def kiosk_name(name: str) -> str:
    """One name for the certificate: an IP address (normalised) or a DNS name (lower case)."""
    text = name.strip() if isinstance(name, str) else ""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    dns = text.lower().rstrip(".")
    labels = dns.split(".")
    if not dns or len(dns) > 253 or not all(_LABEL.match(label) for label in labels) \
            or labels[-1].isdigit():
        raise KioskNameError(
            f"--kiosk-name {name!r} is neither an IP address nor a DNS name: give the address "
            "or host name kiosk screens use to reach this box, without scheme, port or path "
            "(e.g. 192.168.10.20 or gate-b12.airport.lan)")
    return dns


def kiosk_names(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """localhost, 127.0.0.1 and the validated `extra` names, without duplicates, in order."""
    out: list[str] = list(BASE_HOSTS)
    for name in extra:
        n = kiosk_name(name)
        if n not in out:
            out.append(n)
    return tuple(out)


def write_self_signed(cert_path: Path, key_path: Path, common_name: str, now: float,
                      days: int = DEFAULT_DAYS, hosts: tuple[str, ...] = BASE_HOSTS) -> None:
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


def certificate_names(cert_path: Path) -> list[str]:
    """The DNS names and IP addresses in the certificate's subjectAltName, in order."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(g.value) for g in san if isinstance(g, x509.DNSName | x509.IPAddress)]


def covers_host(names: Iterable[str], host: str) -> bool:
    """Whether a certificate naming `names` is valid for clients that connect to `host`."""
    try:
        host = kiosk_name(host)
    except KioskNameError:
        return False
    return host in set(names)
