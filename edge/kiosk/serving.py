"""How the daemon serves the kiosk: a uvicorn Config from the kiosk settings (TLS when set).

Access logs are off (paths and client addresses only would be logged, but the kiosk keeps its
own structlog events); uvicorn does not configure logging (the daemon already did). A short
graceful-shutdown timeout bounds how long open lane-board streams delay a stop.
"""

from __future__ import annotations

from typing import Any

from foundation.errors import ConsentGateError
from foundation.settings import KioskSettings


class KioskTlsError(ConsentGateError):
    """The kiosk TLS settings name a missing file, or only one of certificate and key."""


def uvicorn_kwargs(settings: KioskSettings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config(app, **kwargs)`."""
    kwargs: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_config": None,
                              "access_log": False, "lifespan": "on", "server_header": False,
                              "timeout_graceful_shutdown": 3, "proxy_headers": False}
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if (cert is None) != (key is None):
        raise KioskTlsError("set both kiosk.tls_cert_file and kiosk.tls_key_file (or neither): "
                            "run `python -m provisioning init` to make the device certificate")
    if cert is not None and key is not None:
        for path in (cert, key):
            if not path.is_file():
                raise KioskTlsError(f"TLS file {path} is missing: re-run provisioning or fix "
                                    "the kiosk TLS paths in the settings")
        kwargs.update(ssl_certfile=str(cert), ssl_keyfile=str(key))
    return kwargs
