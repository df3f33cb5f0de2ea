"""Which devices central admits: their public key files in one folder, re-read when it changes.

`AllowList` is the ZAP credentials provider of the collector's CurveZMQ socket (pyzmq's
ThreadAuthenticator calls `callback` with each connecting client's public key): a device is
admitted when its key is one of the *.key files of the folder (central's own key excluded).
"""

from __future__ import annotations

import threading
from pathlib import Path

import structlog
import zmq
import zmq.auth

from central.errors import CollectorError

log = structlog.get_logger(__name__)


class AllowList:
    """ZAP credentials provider: device public keys = *.key files in a folder (minus central's)."""

    def __init__(self, directory: Path, exclude: bytes) -> None:
        self._dir = directory
        self._exclude = exclude
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._keys: frozenset[bytes] = frozenset()
        self.reload()

    def reload(self) -> None:
        try:
            st = self._dir.stat()
            keys = zmq.auth.load_certificates(self._dir)
        except (OSError, ValueError) as exc:
            raise CollectorError(f"cannot read the device allow-list in {self._dir} ({exc}): "
                                 "it must be a folder of device public key files "
                                 "(NAME.key)") from None
        with self._lock:
            self._keys = frozenset(keys) - {self._exclude}
            self._stamp = (st.st_mtime, len(keys))
        log.info("telemetry_allow_list_loaded", devices=len(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the authenticator thread with the client's Z85 public key."""
        try:
            st = self._dir.stat()
            if self._stamp is None or st.st_mtime != self._stamp[0]:
                self.reload()
        except (OSError, CollectorError) as exc:
            log.error("telemetry_allow_list_unreadable", error=str(exc)[:200])
        allowed = key in self._keys
        if not allowed:
            log.warning("telemetry_device_denied", key=key[:8].decode("ascii", "replace"))
        return allowed
