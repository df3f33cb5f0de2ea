"""Staff password hashing: foundation.passwords (scrypt), shared with central's dashboard.

Re-exported here so the kiosk's modules and tests keep their import."""

from __future__ import annotations

from foundation.passwords import (
    MAX_PASSWORD_BYTES,
    PasswordPolicyError,
    hash_password,
    needs_rehash,
    verify_password,
)

__all__ = ["MAX_PASSWORD_BYTES", "PasswordPolicyError", "hash_password", "needs_rehash",
           "verify_password"]
