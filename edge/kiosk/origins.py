"""Which origins may change anything on the kiosk: its configured address(es), nothing else.

Every state-changing request (log-in included) must carry an `Origin` whose scheme, host and
port is one the kiosk is really served at: the scheme from the TLS settings, the port from
`kiosk.port`, and the hosts from `kiosk.host` (for a loopback or wildcard bind: localhost,
127.0.0.1 and ::1), the kiosk certificate's subjectAltNames, and `kiosk.extra_origins`. The
request's own `Host` header is never consulted (an attacker chooses it). A request without an
`Origin` passes only as a same-origin fetch (`Sec-Fetch-Site: same-origin`): browsers send
Origin on every POST, so a missing one is a script or a tool, and those must name the kiosk.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from foundation.settings import KioskSettings

log = structlog.get_logger(__name__)

Origin = tuple[str, str, int]  # (scheme, host, port), host lower-case, IPv6 unbracketed
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
WILDCARD_HOSTS = ("", "0.0.0.0", "::")
DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(text: str) -> Origin | None:
    """`scheme://host[:port]` as an Origin tuple; None when it is not a plain http(s) origin."""
    if not text or len(text) > 512 or text == "null":
        return None
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None \
            or parts.password is not None or parts.path not in ("", "/") or parts.query \
            or parts.fragment:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme]


def _host(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def certificate_names(cert_file: Path) -> list[str]:
    """The DNS names and IP addresses of a PEM certificate's subjectAltName ([] if none or
    unreadable: serving then fails on its own with the reason)."""
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # missing, unreadable, not PEM, no SAN: no names from it
        log.warning("kiosk_cert_names_unreadable")
        return []
    return [str(g.value) for g in san if isinstance(g, x509.DNSName | x509.IPAddress)]


def kiosk_origins(settings: KioskSettings) -> frozenset[Origin]:
    """Every origin the kiosk page is served from, by the settings (see the module docstring)."""
    tls = bool(settings.tls_cert_file and settings.tls_key_file)
    scheme = "https" if tls else "http"
    bind = _host(settings.host)
    hosts: set[str] = set()
    if bind in WILDCARD_HOSTS or _is_loopback(bind):
        hosts.update(LOOPBACK_HOSTS)
    if bind not in WILDCARD_HOSTS:
        hosts.add(bind)
    if tls and settings.tls_cert_file is not None:
        hosts.update(_host(n) for n in certificate_names(settings.tls_cert_file))
    origins = {(scheme, h, settings.port) for h in hosts if h}
    for extra in settings.extra_origins:
        parsed = parse_origin(extra)
        if parsed is not None:
            origins.add(parsed)
    return frozenset(origins)


def origin_allowed(origin: str | None, sec_fetch_site: str | None,
                   allowed: frozenset[Origin]) -> bool:
    """Whether a state-changing request may go ahead (see the module docstring)."""
    if origin is None:
        return (sec_fetch_site or "").strip().lower() == "same-origin"
    parsed = parse_origin(origin)
    return parsed is not None and parsed in allowed
