"""Key files: a raw 256-bit key as 64 lowercase hex characters (+ optional newline), mode 0600.

Used for the store key and the per-device reference secret. Provisioning creates them with
`write_key_file`; the store reads them with `read_key_file`. Key bytes are never logged.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from edge.consent.errors import (
    KeyFileExistsError,
    KeyFileFormatError,
    KeyFileMissingError,
    KeyFilePermissionError,
)

KEY_BYTES = 32
_HEX = re.compile(rb"[0-9a-f]{64}\n?")


def write_key_file(path: Path) -> None:
    """Create `path` holding a fresh random 256-bit key, mode 0600; never overwrites."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileExistsError(f"key file {path} already exists: keep it, or move it away "
                                 "deliberately (a lost key makes the store unreadable)") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_bytes(KEY_BYTES).hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_key_file(path: Path) -> bytes:
    """Return the 32 key bytes of `path`, checking existence, mode 0600 and format."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileMissingError(f"key file {path} not found: run `python -m provisioning init` "
                                  "or restore the key file from its backup") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileFormatError(f"key file {path} is not a regular file: point the settings "
                                 "at the provisioned key file")
    if st.st_mode & 0o077:
        raise KeyFilePermissionError(f"key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
                                     f"it must be readable by its owner only: chmod 600 {path}")
    with path.open("rb") as handle:  # bounded: 64 hex characters and a newline
        data = handle.read(66)
    if not _HEX.fullmatch(data):
        raise KeyFileFormatError(f"key file {path} is not 64 lowercase hex characters "
                                 "(a raw 256-bit key): restore it from backup or re-provision")
    return bytes.fromhex(data[:64].decode("ascii"))
