"""The passenger-held key's token: a compact, versioned, checksummed string.

    CG1.<consent id: 32 hex>.<key: 52 base32>.<check: 8 base32>          (98 characters)

Upper-case letters, digits and dots only, so it fits a QR code's alphanumeric mode (version 5,
error correction M) and survives keyboard-wedge scanners whatever their keyboard layout or caps
lock: parsing ignores case and whitespace. The check is the first 5 bytes of SHA-256 over the
rest, so a mistyped, truncated or altered token is refused before anything is looked up. It is
not what stops tampering: the AES-GCM tag of the sealed template does (edge.consent.sealed).

The key (256 random bits) exists only in the traveller's token and, for the length of one
enrolment or one gate decision, in a `bytearray` here that `wipe()` zeroes. The token's text
itself passes through a request body, a QR decoder or a serial line as a Python `str`, which
cannot be wiped: it is dropped at once and never logged, stored or sent back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from edge.consent.errors import ConsentStoreError

VERSION = "CG1"
KEY_BYTES = 32
CHECK_BYTES = 5
MAX_TOKEN_CHARS = 256  # anything longer is not a token (bounds what a scanner can send)
_SHAPE = re.compile(r"([A-Z0-9]{1,8})\.([0-9A-F]{32})\.([A-Z2-7]{52})\.([A-Z2-7]{8})")


class TokenError(ConsentStoreError):
    """A token was refused; `reason` is the lane's reason code (never the token itself)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _check(body: str) -> str:
    return _b32(hashlib.sha256(body.encode("ascii")).digest()[:CHECK_BYTES])


@dataclass
class PassengerKey:
    """A consent id and its template key (zero it with `wipe()` once used)."""

    consent_id: str
    key: bytearray = field(repr=False)

    @classmethod
    def new(cls, consent_id: str) -> PassengerKey:
        """A fresh random 256-bit key for `consent_id` (from the OS's CSPRNG)."""
        if not re.fullmatch(r"[0-9a-f]{32}", consent_id):
            raise ValueError("consent ids are 32 lower-case hex digits")
        return cls(consent_id, bytearray(secrets.token_bytes(KEY_BYTES)))

    def token(self) -> str:
        """The token text for the receipt (the only place it is ever shown)."""
        if len(self.key) != KEY_BYTES or not any(self.key):
            raise ValueError("this key was wiped")
        body = f"{VERSION}.{self.consent_id.upper()}.{_b32(bytes(self.key))}"
        return f"{body}.{_check(body)}"

    def wipe(self) -> None:
        for i in range(len(self.key)):
            self.key[i] = 0


def looks_like_token(text: str) -> bool:
    """Whether `text` claims to be one of our tokens (its `CG<n>.` prefix), damaged or not: the
    camera passes only these on, so a boarding pass's own barcode shown to it is ignored."""
    return isinstance(text, str) and re.match(r"\s*CG[0-9]{1,7}\.", text, re.I) is not None


def parse_token(text: str) -> PassengerKey:
    """The consent id and key of a token, or TokenError (`token_invalid`: not a token of
    ours, a version this software does not read, or a failed check)."""
    if not isinstance(text, str) or len(text) > MAX_TOKEN_CHARS:
        raise TokenError("token_invalid", "not a boarding key: too long or not text")
    compact = re.sub(r"\s+", "", text).upper()
    shape = _SHAPE.fullmatch(compact)
    if shape is None:
        raise TokenError("token_invalid", "not a boarding key of this system")
    version, consent_hex, key_b32, check = shape.groups()
    if version != VERSION:
        raise TokenError("token_invalid", f"a boarding key of version {version[:8]}, which "
                                          "this gate does not read")
    body = f"{version}.{consent_hex}.{key_b32}"
    if not hmac.compare_digest(_check(body), check):
        raise TokenError("token_invalid", "the boarding key is damaged or was altered")
    try:
        key = bytearray(base64.b32decode(key_b32 + "====", casefold=False))
    except (binascii.Error, ValueError):
        raise TokenError("token_invalid", "the boarding key is damaged") from None
    if len(key) != KEY_BYTES:
        raise TokenError("token_invalid", "the boarding key is damaged")
    return PassengerKey(consent_hex.lower(), key)
