"""The hash chain of the audit log: each row's HMAC covers its fields and the previous hash.

Keyed with a subkey of the device secret, so rows cannot be re-chained without it. Rows carry
event names, actors, ids and reasons only.
"""

from __future__ import annotations

import hashlib
import hmac
import json

GENESIS = b"\x00" * 32


def row_hash(key: bytes, prev_hash: bytes, seq: int, at: float, event: str, actor: str,
             subject: str | None, reason: str | None) -> bytes:
    body = json.dumps([seq, repr(float(at)), event, actor, subject, reason],
                      separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hmac.new(key, prev_hash + body, hashlib.sha256).digest()
