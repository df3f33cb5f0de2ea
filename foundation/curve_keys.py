"""CurveZMQ key files for telemetry, in zmq.auth's certificate format.

`create_keypair(dir, name)` writes NAME.key (public) and NAME.key_secret (0600); provisioning
calls it for the device and central calls it for itself. Loaders raise KeyFileError with what
to do next.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq.auth
import zmq.utils.z85

from foundation.errors import KeyFileError


def create_keypair(directory: Path | str, name: str) -> tuple[Path, Path]:
    """Write DIR/NAME.key and DIR/NAME.key_secret (mode 0600); return both paths."""
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        public, secret = zmq.auth.create_certificates(str(directory), name)
    finally:
        os.umask(old_umask)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def read_key_file(path: Path, *, missing: str, unreadable: str,
                  error: type[Exception] = KeyFileError) -> tuple[bytes | None, bytes | None]:
    """(public, secret) of a zmq.auth key file, each None when absent, every key checked to be
    40 Z85 characters of 32 bytes; `error` with the `missing` or `unreadable` hint otherwise."""
    if not path.is_file():
        raise error(f"key file {path} is missing: {missing}")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not a CurveZMQ key file ({exc}): {unreadable}") from None
    for key in (public, secret):
        if key is not None:
            try:
                if len(key) != 40 or len(zmq.utils.z85.decode(key)) != 32:
                    raise ValueError
            except (ValueError, KeyError):
                raise error(f"{path} holds a malformed key: {unreadable}") from None
    return public, secret


def _load(path: Path) -> tuple[bytes | None, bytes | None]:
    return read_key_file(path, missing="provision the device (`python -m provisioning init`) "
                         "or pass the right path", unreadable="re-create it with provisioning")


def load_keypair(secret_file: Path | str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a NAME.key_secret file."""
    path = Path(secret_file)
    public, secret = _load(path)
    if public is None or secret is None:
        raise KeyFileError(f"{path} has no secret key: point at the NAME.key_secret file, "
                           "not the public NAME.key")
    return public, secret


def load_public_key(public_file: Path | str) -> bytes:
    """The Z85 public key from a NAME.key (or NAME.key_secret) file."""
    path = Path(public_file)
    public, _ = _load(path)
    if public is None:
        raise KeyFileError(f"{path} has no public key: ask for the NAME.key file")
    return public
