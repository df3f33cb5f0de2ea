"""A bounded JSON decoder for frames from other processes: nothing in a frame can crash its reader.

`loads(data, max_bytes=..., max_depth=...)` checks, in this order and before the parser runs:

1. the size (`too_large`): the frame is never decoded when it is over `max_bytes`;
2. UTF-8 (`malformed`);
3. the nesting depth (`too_deep`), by a scan of the text that skips string contents (escapes
   included), so a 1,000-deep array never reaches `json.loads` and its recursion limit.

The parser then refuses what Python's `json` would otherwise let through: `NaN`, `Infinity` and
`-Infinity` (`parse_constant`), numbers that overflow to infinity (`1e999`), integers beyond
64 bits, and duplicate keys. Every refusal is a `JSONLimitError` with a `code` (`too_large`,
`too_deep` or `malformed`) that a server can send back in its error reply.

`check_object(obj, required=..., optional=...)` is the strict field check for readers without a
pydantic model: unknown fields are refused, and types are exact (an int field takes no bool and
no string, a float field takes an int but no bool). gate/1 uses pydantic strict models instead;
uplink/1, counts/1 and the kiosk's JSON bodies can use either.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from foundation.errors import WireError

DEFAULT_MAX_DEPTH: Final = 32
INT_LIMIT: Final = 2**63 - 1

# a JSON string: a quote, then any byte but a quote or a backslash, or a backslash and the byte
# after it, then the closing quote. For valid JSON this finds exactly the parser's strings, so
# the brackets left outside them are the parser's nesting; an unterminated string is left in
# place and its brackets are counted too (which can only over-count, never under-count).
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET: Final = re.compile(rb"[\[\]{}]")
_OPEN: Final = frozenset(b"[{")


class JSONLimitError(WireError):
    """A frame is too large, too deeply nested, or not strict JSON; `code` says which."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


def nesting_depth(data: bytes, limit: int | None = None) -> int:
    """The deepest array/object nesting of JSON text (string contents skipped).

    With `limit`, the scan stops as soon as the depth passes it and returns `limit + 1`.
    """
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if match.group()[0] in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if limit is not None and deepest > limit:
                    return deepest
        elif depth > 0:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise JSONLimitError(f"{name} is not a JSON number: send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONLimitError(f"number {text[:24]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20:  # more digits than any 64-bit integer: refuse before converting
        raise JSONLimitError(f"integer of {len(text)} digits is out of range")
    value = int(text)
    if not -INT_LIMIT - 1 <= value <= INT_LIMIT:
        raise JSONLimitError("integer is out of the 64-bit range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise JSONLimitError("an object repeats a key")
    return obj


def loads(data: bytes | bytearray | memoryview, *, max_bytes: int,
          max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Decode one JSON frame within the limits; raise JSONLimitError (with a `code`) if not."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise JSONLimitError("a frame must be bytes")
    size = len(data) if not isinstance(data, memoryview) else data.nbytes
    if size > max_bytes:
        raise JSONLimitError(f"frame of {size} bytes exceeds {max_bytes}", "too_large")
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONLimitError("frame is not UTF-8") from None
    # fewer openers than the limit cannot nest deeper (a count in C, before the regex scan)
    if (raw.count(b"[") + raw.count(b"{") > max_depth
            and nesting_depth(raw, max_depth) > max_depth):
        raise JSONLimitError(f"frame nests arrays/objects deeper than {max_depth}", "too_deep")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                          parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    except JSONLimitError:
        raise
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise JSONLimitError("frame is not valid JSON") from None


FieldType = type | tuple[type, ...]


def _type_ok(value: Any, want: FieldType) -> bool:
    kinds = want if isinstance(want, tuple) else (want,)
    for kind in kinds:
        if kind is type(None):
            if value is None:
                return True
        elif kind is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return True
        elif kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif isinstance(value, kind):
            return True
    return False


def _type_name(want: FieldType) -> str:
    kinds = want if isinstance(want, tuple) else (want,)
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def check_object(obj: Any, *, required: Mapping[str, FieldType],
                 optional: Mapping[str, FieldType] | None = None) -> dict[str, Any]:
    """`obj` as a dict whose fields are exactly these, with exact types; JSONLimitError if not."""
    if not isinstance(obj, dict):
        raise JSONLimitError("expected a JSON object")
    optional = optional or {}
    unknown = sorted(k for k in obj if k not in required and k not in optional)
    if unknown:
        raise JSONLimitError("unknown field(s): " + ", ".join(repr(k[:32]) for k in unknown[:5]))
    missing = sorted(k for k in required if k not in obj)
    if missing:
        raise JSONLimitError("missing field(s): " + ", ".join(missing))
    for name, value in obj.items():
        want = required.get(name) or optional[name]
        if not _type_ok(value, want):
            raise JSONLimitError(f"field {name!r} must be {_type_name(want)}, got "
                                 f"{type(value).__name__}")
    return obj
