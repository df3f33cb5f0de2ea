"""Password hashing for staff log-ins (the kiosk, central's dashboard): scrypt (memory-hard)
with a self-describing encoded string.

Format: ``scrypt$<log2 n>$<r>$<p>$<salt, base64>$<hash, base64>``. Verification re-derives with
the parameters stored in the string and compares in constant time, so parameters can be raised
later without breaking old hashes. Plain passwords are never logged or stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
LOG2_N = 15          # n = 32768
R = 8                # block size: memory = 128 * r * n = 32 MiB
P = 1
SALT_BYTES = 16
DK_LEN = 32
MAX_PASSWORD_BYTES = 1024
_MAXMEM = 128 * 1024 * 1024
# Parameters accepted when verifying (refuse absurd values from a tampered string).
_LOG2_N_RANGE = range(10, 21)
_R_RANGE = range(1, 33)
_P_RANGE = range(1, 17)


class PasswordPolicyError(ValueError):
    """A password that cannot be hashed (empty or too long)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=1 << log2_n, r=r, p=p,
                          maxmem=_MAXMEM, dklen=dklen)


def hash_password(password: str) -> str:
    """Hash `password` with scrypt and a fresh random salt; returns the encoded string."""
    if not isinstance(password, str) or not password:
        raise PasswordPolicyError("the password is empty: choose a password of 12+ characters")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise PasswordPolicyError(f"the password is longer than {MAX_PASSWORD_BYTES} bytes: "
                                  "choose a shorter one")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(password, salt, LOG2_N, R, P, DK_LEN)
    return f"{SCHEME}${LOG2_N}${R}${P}${_b64(salt)}${_b64(digest)}"


def hash_new_password(password: str, error: type[Exception]) -> str:
    """hash_password for an account being created or reset: a password the policy refuses is
    raised as `error` (the caller's own error class), with the policy's words."""
    try:
        return hash_password(password)
    except PasswordPolicyError as exc:
        raise error(str(exc)) from None


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches `encoded`; False for a wrong password or a malformed hash."""
    if not isinstance(password, str) or not isinstance(encoded, str):
        return False
    if not password or len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return False
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return False
    try:
        log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return False
    if (log2_n not in _LOG2_N_RANGE or r not in _R_RANGE or p not in _P_RANGE
            or not salt or not 16 <= len(expected) <= 64):
        return False
    try:
        actual = _derive(password, salt, log2_n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(encoded: str) -> bool:
    """True when `encoded` uses weaker parameters than today's defaults."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return True
    try:
        return (int(parts[1]), int(parts[2]), int(parts[3])) < (LOG2_N, R, P)
    except ValueError:
        return True
