"""Properties of the telemetry link's two decoders (`uplink/2` header, `counts/1` body).

Valid frames round-trip; random bytes and random JSON only ever raise `Rejected` with a known
code (never RecursionError, OverflowError, ...); whatever decodes is within the schema (every
integer in its range, exact types, no unknown field); a frame deeper than the schema is
`too_deep` and one over its size `too_large`, both before the parser runs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS, REJECT_CODES, Rejected

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)
seqs = st.integers(1, schema.MAX_SEQ)
epochs = st.integers(0, schema.MAX_EPOCH)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=20)
bad_numbers = st.one_of(
    st.integers(max_value=-1), st.integers(min_value=schema.MAX_SEQ + 1, max_value=2**70),
    st.booleans(), st.floats(allow_nan=False), st.text(max_size=5).map(str), st.none(),
    st.lists(st.integers(), max_size=2))


@st.composite
def bodies(draw: Any) -> dict[str, Any]:
    """A valid counts/1 body."""
    window_s = draw(st.sampled_from([1, 60, 300, 900, 3600, 86400]))
    lo = -(-schema.MIN_WINDOW_START // window_s)
    hi = (schema.MAX_WINDOW_START - 1) // window_s
    k = draw(st.integers(1, schema.MAX_K))
    count = st.none() | st.just(0) | st.integers(k, schema.MAX_COUNT)
    return {"schema": "counts/1", "device": draw(ids), "gate": draw(ids),
            "window_start": draw(st.integers(lo, hi)) * window_s, "window_s": window_s, "k": k,
            "epsilon": draw(st.none() | st.floats(1e-6, 1e6)),
            "counts": {f: draw(count) for f in COUNT_FIELDS}}


def _encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _refused(decode: Any, data: bytes) -> Rejected | None:
    """None when `data` decodes; the Rejected otherwise (any other exception fails)."""
    try:
        decode(data)
    except Rejected as exc:
        assert exc.code in REJECT_CODES, exc.code
        return exc
    return None


def _assert_within_counts_schema(obj: dict[str, Any]) -> None:
    assert set(obj) == schema.COUNTS_KEYS and obj["schema"] == "counts/1"
    assert type(obj["window_s"]) is int and 1 <= obj["window_s"] <= schema.MAX_WINDOW_S
    start = obj["window_start"]
    assert type(start) is int and schema.MIN_WINDOW_START <= start < schema.MAX_WINDOW_START
    assert start % obj["window_s"] == 0
    assert type(obj["k"]) is int and 1 <= obj["k"] <= schema.MAX_K
    assert set(obj["counts"]) == set(COUNT_FIELDS)
    for value in obj["counts"].values():
        assert value is None or (type(value) is int and (value == 0 or obj["k"] <= value
                                                         <= schema.MAX_COUNT))


def _assert_within_header_schema(obj: dict[str, Any]) -> None:
    assert obj["schema"] == schema.UPLINK_SCHEMA
    if obj["type"] in ("window", "ack", "gap"):
        assert type(obj["epoch"]) is int and 0 <= obj["epoch"] <= schema.MAX_EPOCH
        assert type(obj["seq"]) is int and 0 <= obj["seq"] <= schema.MAX_SEQ
    if obj["type"] == "window":
        assert obj["seq"] >= 1
        assert obj["prev"] is None or (type(obj["prev"]) is int and 1 <= obj["prev"]
                                       < obj["seq"])


# ------------------------------------------------------------------------ uplink/2 header

@given(epoch=epochs, seq=seqs, data=st.data())
def test_windows_acks_and_gaps_round_trip(epoch, seq, data):
    prev = data.draw(st.none() | st.integers(1, seq - 1)) if seq > 1 else None
    assert schema.decode_header(schema.window_header(epoch, seq, prev)) == {
        "schema": "uplink/2", "type": "window", "epoch": epoch, "seq": seq, "prev": prev}
    for kind, encode in (("ack", schema.ack), ("gap", schema.gap)):
        assert schema.decode_header(encode(epoch, seq - 1)) == {
            "schema": "uplink/2", "type": kind, "epoch": epoch, "seq": seq - 1}


@given(epoch=st.integers(0, 10**17), seq=st.integers(1, 10**17),
       prev=st.none() | st.integers(1, 10**17))
def test_the_window_fast_path_agrees_with_the_full_decoder(epoch, seq, prev):
    data = schema.window_header(epoch, seq, prev)
    slow = data.replace(b",", b", ")  # not the exact form window_header writes: full decoder
    fast_exc, slow_exc = _refused(schema.decode_header, data), _refused(schema.decode_header,
                                                                          slow)
    if fast_exc is None or slow_exc is None:
        assert fast_exc is None and slow_exc is None
        assert schema.decode_header(data) == schema.decode_header(slow)
    else:
        assert fast_exc.code == slow_exc.code == "out_of_range"


@given(code=st.sampled_from(sorted(REJECT_CODES)), reason=st.text(max_size=400),
       epoch=st.none() | epochs, seq=st.none() | seqs)
def test_rejects_fit_a_header_and_round_trip(code, reason, epoch, seq):
    data = schema.reject(code, reason, epoch=epoch, seq=seq)
    assert len(data) <= schema.MAX_HEADER_BYTES
    msg = schema.decode_header(data)
    assert (msg["code"], msg["epoch"], msg["seq"]) == (code, epoch, seq)
    assert msg["reason"] == schema.printable(reason) and msg["reason"].isascii()


@given(data=st.binary(max_size=700))
def test_random_bytes_never_crash_the_header_decoder(data):
    if _refused(schema.decode_header, data) is None:
        _assert_within_header_schema(schema.decode_header(data))


@given(value=json_values)
def test_random_json_never_crashes_the_header_decoder(value):
    if _refused(schema.decode_header, _encode(value)) is None:
        _assert_within_header_schema(schema.decode_header(_encode(value)))


@given(name=st.sampled_from(["epoch", "seq", "prev"]), bad=bad_numbers, epoch=epochs, seq=seqs)
def test_a_bad_number_in_a_window_header_is_refused(name, bad, epoch, seq):
    msg = json.loads(schema.window_header(epoch, max(seq, 2), 1))
    if name == "prev" and bad is None:
        return  # null is a valid prev
    msg[name] = bad
    exc = _refused(schema.decode_header, _encode(msg))
    assert exc is not None, msg
    assert exc.code in ("out_of_range", "bad_field", "malformed", "too_deep"), exc.code


@given(kind=st.sampled_from(["window", "ack", "gap", "heartbeat", "reject"]),
       name=st.text(min_size=1, max_size=10), value=json_values)
def test_an_unknown_header_field_is_refused(kind, name, value):
    msg = json.loads({"window": schema.window_header(1, 2, 1), "ack": schema.ack(1, 2),
                      "gap": schema.gap(1, 2), "heartbeat": schema.HEARTBEAT,
                      "reject": schema.reject("malformed", "x")}[kind])
    if name in msg:
        return
    msg[name] = value
    assert _refused(schema.decode_header, _encode(msg)) is not None


# ------------------------------------------------------------------------ counts/1 body

@given(obj=bodies())
def test_valid_bodies_round_trip(obj):
    assert schema.decode_counts(_encode(obj)) == obj
    _assert_within_counts_schema(obj)


@given(data=st.binary(max_size=5000))
def test_random_bytes_never_crash_the_body_decoder(data):
    _refused(schema.decode_counts, data)


@given(obj=bodies(), path=st.sampled_from([*sorted(schema.COUNTS_KEYS), *COUNT_FIELDS]),
       value=json_values | bad_numbers)
def test_whatever_decodes_after_a_mutation_is_within_the_schema(obj, path, value):
    target = obj["counts"] if path in COUNT_FIELDS else obj
    target[path] = value
    data = _encode(obj)
    if _refused(schema.decode_counts, data) is None:
        _assert_within_counts_schema(schema.decode_counts(data))


@given(obj=bodies(), name=st.text(min_size=1, max_size=10), value=json_values,
       in_counts=st.booleans())
def test_an_unknown_body_field_is_refused(obj, name, value, in_counts):
    target = obj["counts"] if in_counts else obj
    if name in target:
        return
    target[name] = value
    exc = _refused(schema.decode_counts, _encode(obj))
    assert exc is not None and exc.code in ("bad_field", "too_deep", "too_large", "malformed")


@given(obj=bodies(), field=st.sampled_from(COUNT_FIELDS),
       value=st.integers(schema.MAX_COUNT + 1, 2**63 - 1) | st.integers(-(2**63), -1))
def test_counts_out_of_range_are_refused(obj, field, value):
    obj["counts"][field] = value
    exc = _refused(schema.decode_counts, _encode(obj))
    assert exc is not None and exc.code == "out_of_range"


@given(obj=bodies(), value=st.integers(2**63, 10**30) | st.integers(-(10**30), -(2**63) - 1),
       field=st.sampled_from(["window_start", "window_s", "k", "matched"]))
def test_integers_beyond_64_bits_are_refused_before_use(obj, value, field):
    (obj["counts"] if field == "matched" else obj)[field] = value
    exc = _refused(schema.decode_counts, _encode(obj))
    assert exc is not None and exc.code == "malformed"


@given(depth=st.integers(3, 5000), opener=st.sampled_from(["[", '{"a":']))
def test_nesting_beyond_the_schema_is_too_deep_before_parsing(depth, opener):
    closer = "]" if opener == "[" else "}"
    text = (opener * depth + "1" + closer * depth).encode()
    for decode, limit in ((schema.decode_counts, schema.MAX_BODY_BYTES),
                          (schema.decode_header, schema.MAX_HEADER_BYTES)):
        exc = _refused(decode, text)
        assert exc is not None
        assert exc.code == ("too_large" if len(text) > limit else "too_deep")


@given(extra=st.integers(1, 4096))
def test_frames_over_their_size_are_too_large(extra):
    for decode, limit in ((schema.decode_counts, schema.MAX_BODY_BYTES),
                          (schema.decode_header, schema.MAX_HEADER_BYTES)):
        exc = _refused(decode, b" " * (limit + extra))
        assert exc is not None and exc.code == "too_large"


@pytest.mark.parametrize("data", [b'{"schema":"counts/1","epsilon":NaN}',
                                  b'{"schema":"counts/1","epsilon":Infinity}',
                                  b'{"schema":"counts/1","epsilon":-Infinity}',
                                  b'{"schema":"counts/1","epsilon":1e999}'])
def test_non_finite_numbers_are_malformed(data):
    exc = _refused(schema.decode_counts, data)
    assert exc is not None and exc.code == "malformed"
