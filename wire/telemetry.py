"""Wire schemas: the `counts/1` window body and the `uplink/2` envelope around it.

`counts/1` is the only payload that leaves the box; its field whitelist is closed (see
docs/protocols.md, "counts/1"). `uplink/2` carries the transport: the store's epoch and the
window's sequence number, acks, gaps, heartbeats and typed rejects. Both are compact UTF-8 JSON.

Decoding is bounded and strict, one decoder per schema (`decode_header`, `decode_counts`): the
size is checked before parsing, then the nesting depth (wire.bounded_json, which also refuses
NaN/Infinity, integers beyond 64 bits and duplicate keys), then exactly the schema's fields with
exact types (no strings for numbers, no bools for integers) and every integer within its range
(`MAX_SEQ`, `MAX_EPOCH`, `MAX_COUNT`, `MIN_WINDOW_START`..`MAX_WINDOW_START`). Every refusal is
a `Rejected` (a SchemaError) whose `code` (one of `REJECT_CODES`) goes back in the `reject`.
Every socket of the link sets ZMQ_MAXMSGSIZE to `SOCKET_MAXMSGSIZE`: a larger frame is dropped
by libzmq with its connection, before it is read into memory.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from foundation.errors import SchemaError
from wire.bounded_json import JSONLimitError, loads

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
    "presentation_attacks",
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


COUNTS_SCHEMA: Final = "counts/1"
UPLINK_SCHEMA: Final = "uplink/2"
RETIRED_UPLINK_SCHEMAS: Final = frozenset({"uplink/1"})  # refused with code retired_schema

MAX_BODY_BYTES: Final = 4096  # a counts/1 body (a real one is about 400 bytes)
MAX_HEADER_BYTES: Final = 512  # an uplink/2 frame
SOCKET_MAXMSGSIZE: Final = 8192  # ZMQ_MAXMSGSIZE of every link socket: larger frames are dropped
MAX_BODY_DEPTH: Final = 2  # the body nests one object (counts)
MAX_HEADER_DEPTH: Final = 1  # headers are flat
MAX_SEQ: Final = 2**53 - 1  # seq 1..MAX_SEQ (exact in any JSON reader)
MAX_EPOCH: Final = 2**53 - 1  # epoch 0..MAX_EPOCH; 0 = windows queued before epochs existed
MAX_COUNT: Final = 10**9
MIN_WINDOW_START: Final = 1_577_836_800  # 2020-01-01T00:00:00Z
MAX_WINDOW_START: Final = 4_102_444_800  # 2100-01-01T00:00:00Z (exclusive)
MAX_WINDOW_S: Final = 86400
MAX_K: Final = 100
MAX_REASON_CHARS: Final = 200

REJECT_CODES: Final = {
    "too_large": f"a header over {MAX_HEADER_BYTES} bytes or a body over {MAX_BODY_BYTES} "
                 f"(frames over {SOCKET_MAXMSGSIZE} bytes are dropped by libzmq, unanswered)",
    "too_deep": "arrays/objects nested deeper than the schema's (header 1, body 2)",
    "malformed": "not strict JSON: bad UTF-8 or syntax, NaN/Infinity, an integer beyond 64 "
                 "bits, a repeated key, not an object",
    "unsupported_schema": f"schema is not {UPLINK_SCHEMA} (header) or {COUNTS_SCHEMA} (body)",
    "retired_schema": "uplink/1: windows must carry their store's epoch (uplink/2)",
    "bad_field": "an unknown or missing field, a wrong type (a string or bool for a number), "
                 "an unknown message type, a bad device or gate id",
    "out_of_range": "a number outside its range: seq, epoch, a count, window_start, window_s, "
                    "k, epsilon, prev; or window_start not a multiple of window_s",
    "below_k": "a count in 1..k-1: it must have been suppressed",
    "unexpected": "a message the collector does not take (an ack from a device, extra frames)",
    "identity": "the device id is bound to another key, or this key to another device id",
    "epoch_superseded": "a new window of an epoch after a newer epoch of the device was "
                        "stored: two copies of one store are sending (a clone)",
    "internal": "the collector failed on this message; it stored nothing of it and serves on",
}

COUNTS_KEYS = frozenset({"schema", "device", "gate", "window_start", "window_s", "k",
                         "epsilon", "counts"})
_COUNT_SET = frozenset(COUNT_FIELDS)
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_CODE = re.compile(r"[a-z_]{1,32}")
# the exact bytes window_header() writes (no 17-digit number, so within 64 bits): decoded without
# the general parser, then range-checked like any header; anything else takes the full path
_WINDOW_FAST = re.compile(rb'\{"schema":"uplink/2","type":"window","epoch":(0|[1-9][0-9]{0,15}),'
                          rb'"seq":([1-9][0-9]{0,15}),"prev":(null|[1-9][0-9]{0,15})\}')


class Rejected(SchemaError):
    """A frame off its schema (or refused by the collector); `code` is one of REJECT_CODES."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


def printable(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` cut to `limit` characters of printable ASCII (others become '?')."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])


def _show(value: Any) -> str:
    return printable(repr(value), 32)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _load(data: bytes, limit: int, depth: int, what: str) -> dict[str, Any]:
    try:
        obj = loads(data, max_bytes=limit, max_depth=depth)
    except JSONLimitError as exc:
        raise Rejected(f"{what}: {exc}", exc.code) from None
    if not isinstance(obj, dict):
        raise Rejected(f"{what} is not a JSON object")
    return obj


def _is_int(v: Any) -> bool:
    return type(v) is int  # bool is not a count


def _int_in(value: Any, lo: int, hi: int, what: str) -> int:
    """`value` as an int in lo..hi: bad_field when not a whole number, out_of_range when out."""
    if not _is_int(value):
        raise Rejected(f"{what} (got {type(value).__name__})", "bad_field")
    if not lo <= value <= hi:
        raise Rejected(f"{what} (out of range)", "out_of_range")
    return int(value)


def _check_id(value: Any, name: str, max_len: int) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= max_len or not _ID.fullmatch(value):
        raise Rejected(f"{name} must be 1-{max_len} letters, digits, '.', '_' or '-'",
                       "bad_field")


def _fields(obj: dict[str, Any], want: frozenset[str], what: str) -> None:
    keys = set(obj)
    if keys != want:
        extra = sorted(_show(k) for k in keys - want)[:5]
        missing = sorted(want - keys)
        raise Rejected(f"{what} fields wrong: unexpected [{', '.join(extra)}], missing "
                       f"{missing}", "bad_field")


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
    """Parse and validate a `counts/1` body; Rejected (a SchemaError) says what is wrong."""
    obj = _load(data, MAX_BODY_BYTES, MAX_BODY_DEPTH, "counts body")
    schema = obj.get("schema")
    if schema != COUNTS_SCHEMA:
        raise Rejected(f"unknown schema {_show(schema)}: this collector reads {COUNTS_SCHEMA}",
                       "unsupported_schema")
    _fields(obj, COUNTS_KEYS, "counts/1")
    _check_id(obj["device"], "device", 64)
    _check_id(obj["gate"], "gate", 32)
    window_s = _int_in(obj["window_s"], 1, MAX_WINDOW_S,
                       "window_s must be a whole number of seconds in 1..86400")
    start = _int_in(obj["window_start"], MIN_WINDOW_START, MAX_WINDOW_START - 1,
                    "window_start must be whole seconds since 1970 in 2020..2099")
    if start % window_s:
        raise Rejected("window_start must be a whole multiple of window_s", "out_of_range")
    k = _int_in(obj["k"], 1, MAX_K, f"k must be a whole number in 1..{MAX_K}")
    eps = obj["epsilon"]
    if eps is not None:
        if isinstance(eps, bool) or not isinstance(eps, int | float):
            raise Rejected("epsilon must be null or a number > 0", "bad_field")
        if not eps > 0:  # finite: the parser refuses NaN, Infinity and overflowing numbers
            raise Rejected("epsilon must be null or a number > 0", "out_of_range")
    counts = obj["counts"]
    if not isinstance(counts, dict) or set(counts) != _COUNT_SET:
        raise Rejected("counts must have exactly the fields " + ", ".join(COUNT_FIELDS),
                       "bad_field")
    for name, value in counts.items():
        if value is None or (type(value) is int and (value == 0 or k <= value <= MAX_COUNT)):
            continue
        _int_in(value, 0, MAX_COUNT,
                f"count {name} must be null (suppressed) or a whole number >= 0 and <= "
                f"{MAX_COUNT}")
        raise Rejected(f"count {name} is {value}, below k={k}: it must be suppressed",
                       "below_k")
    return obj


# ---------------------------------------------------------------- uplink/2

# Integer-only frames are formatted directly (same bytes as _dumps, a few µs cheaper each).

def window_header(epoch: int, seq: int, prev: int | None) -> bytes:
    """Window `seq` of the store's `epoch`; `prev` = the seq sent just before it (or null)."""
    return b'{"schema":"uplink/2","type":"window","epoch":%d,"seq":%d,"prev":%s}' % (
        int(epoch), int(seq), b"null" if prev is None else b"%d" % int(prev))


HEARTBEAT: Final = _dumps({"schema": UPLINK_SCHEMA, "type": "heartbeat"})


def ack(epoch: int, seq: int) -> bytes:
    """Cumulative: every window of this device's `epoch` up to `seq` is stored."""
    return b'{"schema":"uplink/2","type":"ack","epoch":%d,"seq":%d}' % (int(epoch), int(seq))


def gap(epoch: int, last: int) -> bytes:
    """The window's predecessor is missing; central holds `epoch` up to `last`."""
    return b'{"schema":"uplink/2","type":"gap","epoch":%d,"seq":%d}' % (int(epoch), int(last))


def reject(code: str, reason: str, *, epoch: int | None = None, seq: int | None = None) -> bytes:
    """A typed refusal (`code` from REJECT_CODES); the reason is cut to printable ASCII."""
    return _dumps({"schema": UPLINK_SCHEMA, "type": "reject", "epoch": epoch, "seq": seq,
                   "code": code if _CODE.fullmatch(code) else "internal",
                   "reason": printable(reason)})


def reject_retired(reason: str) -> bytes:
    """A reject an uplink/1 device can read (it logs the reason): its version is retired."""
    return _dumps({"schema": "uplink/1", "type": "reject", "seq": None,
                   "reason": printable(reason)})


_HEADER_FIELDS: Final = {
    "window": frozenset({"schema", "type", "epoch", "seq", "prev"}),
    "heartbeat": frozenset({"schema", "type"}),
    "ack": frozenset({"schema", "type", "epoch", "seq"}),
    "gap": frozenset({"schema", "type", "epoch", "seq"}),
    "reject": frozenset({"schema", "type", "epoch", "seq", "code", "reason"}),
}


def decode_header(data: bytes) -> dict[str, Any]:
    """Parse and validate an `uplink/2` frame; Rejected (a SchemaError) says what is wrong."""
    fast = _WINDOW_FAST.fullmatch(data) if type(data) is bytes else None
    if fast is not None:
        epoch, seq = int(fast[1]), int(fast[2])
        prev = None if fast[3] == b"null" else int(fast[3])
        if epoch <= MAX_EPOCH and seq <= MAX_SEQ and (prev is None or prev < seq):
            return {"schema": UPLINK_SCHEMA, "type": "window", "epoch": epoch, "seq": seq,
                    "prev": prev}
    obj = _load(data, MAX_HEADER_BYTES, MAX_HEADER_DEPTH, "uplink header")
    schema = obj.get("schema")
    if isinstance(schema, str) and schema in RETIRED_UPLINK_SCHEMAS:
        raise Rejected(f"{schema} is retired: the link speaks {UPLINK_SCHEMA}, whose windows "
                       f"carry their store's epoch; update the software of the {schema} end "
                       "(central first, then the devices)", "retired_schema")
    if schema != UPLINK_SCHEMA:
        raise Rejected(f"unknown schema {_show(schema)}: expected {UPLINK_SCHEMA}",
                       "unsupported_schema")
    kind = obj.get("type")
    keys = _HEADER_FIELDS.get(kind) if isinstance(kind, str) else None
    if keys is None:
        raise Rejected(f"unknown uplink message type {_show(kind)}", "bad_field")
    _fields(obj, keys, f"uplink {kind}")
    if kind == "heartbeat":
        return obj
    if kind == "reject":
        for name, hi in (("epoch", MAX_EPOCH), ("seq", MAX_SEQ)):
            if obj[name] is not None:
                _int_in(obj[name], 0, hi, f"reject {name} must be null or in 0..{hi}")
        if not isinstance(obj["code"], str) or not _CODE.fullmatch(obj["code"]):
            raise Rejected("reject code must be 1-32 of a-z and '_'", "bad_field")
        if not isinstance(obj["reason"], str):
            raise Rejected("reject reason must be text", "bad_field")
        return obj
    _int_in(obj["epoch"], 0, MAX_EPOCH, f"epoch must be a whole number in 0..{MAX_EPOCH}")
    if kind == "window":
        seq = _int_in(obj["seq"], 1, MAX_SEQ, f"seq must be a whole number in 1..{MAX_SEQ}")
        prev = obj["prev"]
        if prev is not None:
            _int_in(prev, 1, seq - 1, "prev must be null or a whole number in 1..seq-1")
    else:
        _int_in(obj["seq"], 0, MAX_SEQ, f"ack/gap seq must be a whole number in 0..{MAX_SEQ}")
    return obj
