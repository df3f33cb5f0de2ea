"""Wire schemas: the `counts/1` window body and the `uplink/1` envelope around it.

`counts/1` is the only payload that leaves the box; its field whitelist is closed (see
README.md, "Schema counts/1"). `uplink/1` carries the transport: sequence numbers, acks,
heartbeats. Both are compact UTF-8 JSON; decoding is strict and raises SchemaError.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import SchemaError

COUNT_FIELDS: tuple[str, ...] = (
    "people_detected",
    "presented",
    "matched",
    "not_matched",
    "wrong_flight",
    "gates_opened",
    "passages",
    "tailgating_alarms",
    "temperature_screened",
    "referred",
    "unreliable",
    "close_contacts",
    "peak_in_view",
    "faults",
)


@dataclass(frozen=True)
class Window:
    """One closed window: its aligned start (epoch s), its length, and raw counts per field."""

    start: int
    length_s: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + self.length_s



COUNTS_SCHEMA = "counts/1"
UPLINK_SCHEMA = "uplink/1"

COUNTS_KEYS = frozenset({"schema", "device", "gate", "window_start", "window_s", "k",
                         "epsilon", "counts"})
_COUNT_SET = frozenset(COUNT_FIELDS)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_BODY_BYTES = 4096
MAX_HEADER_BYTES = 512


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _loads(data: bytes, limit: int, what: str) -> dict[str, Any]:
    if len(data) > limit:
        raise SchemaError(f"{what} is {len(data)} bytes, more than {limit}")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SchemaError(f"{what} is not UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise SchemaError(f"{what} is not a JSON object")
    return obj


def _is_int(v: Any) -> bool:
    return type(v) is int  # bool is not a count


def _check_id(value: Any, name: str, max_len: int) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= max_len or not _ID.fullmatch(value):
        raise SchemaError(f"{name} must be 1-{max_len} letters, digits, '.', '_' or '-'")


# ---------------------------------------------------------------- counts/1

def encode_counts(device: str, gate: str, window: Window, published: dict[str, int | None],
                  k: int, epsilon: float | None) -> bytes:
    """The `counts/1` body for one window after disclosure control (validated before return)."""
    body = {
        "schema": COUNTS_SCHEMA,
        "device": device,
        "gate": gate,
        "window_start": int(window.start),
        "window_s": int(window.length_s),
        "k": int(k),
        "epsilon": epsilon,
        "counts": {name: published[name] for name in COUNT_FIELDS},
    }
    data = _dumps(body)
    decode_counts(data)  # never send what central would refuse
    return data


def decode_counts(data: bytes) -> dict[str, Any]:
    """Parse and validate a `counts/1` body; SchemaError says what is wrong."""
    obj = _loads(data, MAX_BODY_BYTES, "counts body")
    schema = obj.get("schema")
    if schema != COUNTS_SCHEMA:
        raise SchemaError(f"unknown schema {schema!r}: this collector reads {COUNTS_SCHEMA}")
    keys = set(obj)
    if keys != COUNTS_KEYS:
        extra, missing = sorted(keys - COUNTS_KEYS), sorted(COUNTS_KEYS - keys)
        raise SchemaError(f"counts/1 fields wrong: unexpected {extra}, missing {missing}")
    _check_id(obj["device"], "device", 64)
    _check_id(obj["gate"], "gate", 32)
    window_s, start, k = obj["window_s"], obj["window_start"], obj["k"]
    if not _is_int(window_s) or not 1 <= window_s <= 86400:
        raise SchemaError("window_s must be a whole number of seconds in 1..86400")
    if not _is_int(start) or start < 0 or start % window_s:
        raise SchemaError("window_start must be a whole multiple of window_s")
    if not _is_int(k) or not 1 <= k <= 100:
        raise SchemaError("k must be a whole number in 1..100")
    eps = obj["epsilon"]
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, int | float)
                            or not eps > 0):
        raise SchemaError("epsilon must be null or a number > 0")
    counts = obj["counts"]
    if not isinstance(counts, dict) or set(counts) != _COUNT_SET:
        raise SchemaError("counts must have exactly the fields " + ", ".join(COUNT_FIELDS))
    for name, value in counts.items():
        if value is None:
            continue
        if type(value) is not int or value < 0:
            raise SchemaError(f"count {name} must be null (suppressed) or a whole number >= 0")
        if 0 < value < k:
            raise SchemaError(f"count {name} is {value}, below k={k}: it must be suppressed")
    return obj


# ---------------------------------------------------------------- uplink/1

# Integer-only frames are formatted directly (same bytes as _dumps, a few µs cheaper each).

def window_header(seq: int, prev: int | None) -> bytes:
    return b'{"schema":"uplink/1","type":"window","seq":%d,"prev":%s}' % (
        int(seq), b"null" if prev is None else b"%d" % int(prev))


HEARTBEAT = _dumps({"schema": UPLINK_SCHEMA, "type": "heartbeat"})


def ack(seq: int) -> bytes:
    """Cumulative: every window of this device up to `seq` is stored."""
    return b'{"schema":"uplink/1","type":"ack","seq":%d}' % int(seq)


def gap(last: int) -> bytes:
    """The window's predecessor is missing; central holds everything up to `last`."""
    return b'{"schema":"uplink/1","type":"gap","seq":%d}' % int(last)


def reject(seq: int | None, reason: str) -> bytes:
    return _dumps({"schema": UPLINK_SCHEMA, "type": "reject", "seq": seq,
                   "reason": reason[:200]})


_HEADER_KEYS = {
    "window": frozenset({"schema", "type", "seq", "prev"}),
    "heartbeat": frozenset({"schema", "type"}),
    "ack": frozenset({"schema", "type", "seq"}),
    "gap": frozenset({"schema", "type", "seq"}),
    "reject": frozenset({"schema", "type", "seq", "reason"}),
}


def decode_header(data: bytes) -> dict[str, Any]:
    """Parse and validate an `uplink/1` envelope frame."""
    obj = _loads(data, MAX_HEADER_BYTES, "uplink header")
    if obj.get("schema") != UPLINK_SCHEMA:
        raise SchemaError(f"unknown schema {obj.get('schema')!r}: expected {UPLINK_SCHEMA}")
    kind = obj.get("type")
    keys = _HEADER_KEYS.get(kind) if isinstance(kind, str) else None
    if keys is None:
        raise SchemaError(f"unknown uplink message type {kind!r}")
    if set(obj) != keys:
        raise SchemaError(f"uplink {kind} fields must be {sorted(keys)}")
    if "seq" in keys:
        seq = obj["seq"]
        if kind == "reject":
            if seq is not None and not _is_int(seq):
                raise SchemaError("reject seq must be null or a whole number")
        elif not _is_int(seq) or seq < (1 if kind == "window" else 0):
            raise SchemaError("seq must be a whole number >= 1 (acks: >= 0)")
    if kind == "window":
        prev = obj["prev"]
        if prev is not None and (not _is_int(prev) or not 1 <= prev < obj["seq"]):
            raise SchemaError("prev must be null or a whole number in 1..seq-1")
    if kind == "reject" and not isinstance(obj["reason"], str):
        raise SchemaError("reject reason must be text")
    return obj
