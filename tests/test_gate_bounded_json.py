"""wire.bounded_json, the decoder gate/1 frames go through: properties over random input.

Random bytes only ever raise JSONLimitError; random nested JSON decodes exactly as json.loads
when within the limits and is refused (`too_deep`) by the scan when not, however deep, and
before the parser could recurse; random valid gate/1 commands round-trip through it.
"""

from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.bounded_json import JSONLimitError, check_object, loads, nesting_depth
from wire.gate import (
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    DenyCmd,
    HeartbeatCmd,
    OpenCmd,
    OverrideCmd,
    ResetCmd,
    StatusCmd,
    decode_command,
    encode,
    new_grant_id,
)

LIMIT = 64 * 1024
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12))
# strings full of brackets, quotes and backslashes: the scan must skip them exactly
tricky = st.text(alphabet='[]{}"\\,: ab\n\t\u00e9\u2028', max_size=12)
json_values = st.recursive(
    st.one_of(scalars, tricky),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=6), tricky), inner,
                                            max_size=4)),
    max_leaves=40)


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


@given(st.binary(max_size=600))
def test_random_bytes_only_raise_the_limit_error(data: bytes) -> None:
    try:
        loads(data, max_bytes=LIMIT, max_depth=8)
    except JSONLimitError as exc:
        assert exc.code in ("malformed", "too_deep")


@given(json_values, st.integers(0, 6))
def test_random_nested_json_decodes_or_is_too_deep(value: object, limit: int) -> None:
    data = json.dumps(value).encode()
    assert nesting_depth(data) == depth_of(value)
    if depth_of(value) > limit:
        with pytest.raises(JSONLimitError) as info:
            loads(data, max_bytes=LIMIT, max_depth=limit)
        assert info.value.code == "too_deep"
    else:
        assert loads(data, max_bytes=LIMIT, max_depth=limit) == value


@given(json_values, st.integers(1, 3), st.sampled_from(["[", "{\"k\":"]))
def test_nesting_any_value_deeper_counts_every_level(value: object, extra: int,
                                                     opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    data = (opener * extra + json.dumps(value) + closer * extra).encode()
    assert nesting_depth(data) == depth_of(value) + extra


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_very_deep_frames_are_refused_fast_before_parsing(depth: int) -> None:
    for data in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth,
                 b"[" * depth):  # unterminated too
        t0 = time.monotonic()
        with pytest.raises(JSONLimitError) as info:
            loads(data, max_bytes=10**7, max_depth=32)
        assert info.value.code == "too_deep"
        assert time.monotonic() - t0 < 1.0


def test_brackets_inside_strings_do_not_count() -> None:
    data = json.dumps({"a": "[[[[[[[[[[", "b": "\\\"]]]]{{{{", "c": ["\"[\""]}).encode()
    assert nesting_depth(data) == 2
    assert loads(data, max_bytes=LIMIT, max_depth=2)["b"] == "\\\"]]]]{{{{"


def test_size_is_checked_before_anything_else() -> None:
    with pytest.raises(JSONLimitError) as info:
        loads(b"\xff" * 5000, max_bytes=4096)
    assert info.value.code == "too_large"
    assert loads(memoryview(b"[1]"), max_bytes=3) == [1]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1e999]", "-1e400",
                                  "9" * 25, str(2**63), '{"a": 1, "a": 2}', "", "[1,]",
                                  "'x'", '"\x01"'])
def test_not_strict_json_is_malformed(text: str) -> None:
    with pytest.raises(JSONLimitError) as info:
        loads(text.encode(), max_bytes=LIMIT)
    assert info.value.code == "malformed"


def test_numbers_in_range_decode() -> None:
    assert loads(b"[9223372036854775807, -9223372036854775808, 1.5e300, 0]",
                 max_bytes=LIMIT) == [2**63 - 1, -(2**63), 1.5e300, 0]
    assert math.isfinite(loads(b"1e308", max_bytes=LIMIT))


def test_check_object_is_strict() -> None:
    spec = {"n": int, "x": float, "s": str}
    assert check_object({"n": 1, "x": 2, "s": "a"}, required=spec) == {"n": 1, "x": 2, "s": "a"}
    for bad in ({"n": True, "x": 1.0, "s": "a"}, {"n": "1", "x": 1.0, "s": "a"},
                {"n": 1, "x": False, "s": "a"}, {"n": 1, "x": "1.0", "s": "a"},
                {"n": 1, "x": 1.0}, {"n": 1, "x": 1.0, "s": "a", "extra": 0}, [1]):
        with pytest.raises(JSONLimitError):
            check_object(bad, required=spec)
    assert check_object({}, required={}, optional={"o": (str, type(None))}) == {}
    assert check_object({"o": None}, required={}, optional={"o": (str, type(None))})


lanes = st.from_regex(r"\A[A-Za-z0-9_-]{1,16}\Z")
tokens = st.from_regex(r"\A[A-Za-z0-9_.:@-]{1,64}\Z")
texts = st.text(min_size=1, max_size=200).filter(lambda t: not any(
    0xD800 <= ord(c) <= 0xDFFF for c in t))
deadlines = st.one_of(st.none(), st.floats(0, 2**32, allow_nan=False, allow_infinity=False))
commands = st.one_of(
    st.builds(OpenCmd, id=tokens, lane=lanes, ttl_ms=st.integers(100, 120_000),
              deadline=deadlines,
              grant_id=st.floats(0, 10**9).map(new_grant_id)),
    st.builds(DenyCmd, id=tokens, lane=lanes, deadline=deadlines),
    st.builds(ResetCmd, id=tokens, lane=lanes, reason=texts, actor=tokens, deadline=deadlines),
    st.builds(OverrideCmd, id=tokens, lane=lanes, action=st.sampled_from(["open", "close"]),
              reason=texts, actor=tokens, deadline=deadlines),
    st.builds(HeartbeatCmd, id=tokens, deadline=deadlines),
    st.builds(StatusCmd, id=tokens, deadline=deadlines),
)


@given(commands)
def test_random_valid_commands_round_trip(cmd) -> None:
    data = encode(cmd)
    assert len(data) <= MAX_MESSAGE_BYTES and nesting_depth(data) <= MAX_DEPTH
    assert decode_command(data) == cmd
