"""Disclosure control and the counts/1 + uplink/1 schemas: whitelist, k, secondary suppression."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.telemetry.disclosure import (
    DERIVED,
    RELATIONS,
    apply_disclosure_control,
    laplace_noise,
    suppress,
)
from foundation.errors import SchemaError
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS, Window

WHITELIST = {"schema", "device", "gate", "window_start", "window_s", "k", "epsilon", "counts"}

counts_st = st.fixed_dictionaries({f: st.integers(0, 60) for f in COUNT_FIELDS})


def _body(counts, k=5, eps=None, rng=None):
    published = apply_disclosure_control(counts, k, eps, rng)
    return schema.encode_counts("cg-0123abcd", "GATE-7", Window(1_800_000_000, 300, counts),
                                published, k, eps)


@given(counts=counts_st, k=st.integers(1, 20),
       eps=st.one_of(st.none(), st.floats(0.05, 5.0)), seed=st.integers(0, 2**32))
def test_every_field_is_whitelisted_and_every_count_obeys_k(counts, k, eps, seed):
    data = _body(counts, k, eps, random.Random(seed))
    msg = json.loads(data)
    assert set(msg) == WHITELIST
    assert msg["schema"] == "counts/1"
    assert set(msg["counts"]) == set(COUNT_FIELDS)
    for value in msg["counts"].values():
        assert value is None or value == 0 or value >= k
    published = msg["counts"]
    for total, parts in RELATIONS:  # no relation reveals a suppressed cell by subtraction
        if any(c in DERIVED for c in (total, *parts)):
            continue
        hidden = [c for c in (total, *parts) if published[c] is None]
        assert len(hidden) != 1
    for minuend, subtrahend in DERIVED.values():  # nor does a small difference of two cells
        if published[minuend] is not None and published[subtrahend] is not None:
            difference = published[minuend] - published[subtrahend]
            assert difference <= 0 or difference >= k
    assert msg["window_start"] % msg["window_s"] == 0
    schema.decode_counts(data)  # the collector accepts it


def test_primary_suppression_of_1_to_k_minus_1():
    out = suppress({"a": 0, "b": 1, "c": 4, "d": 5, "e": 100}, 5, relations=())
    assert out == {"a": 0, "b": None, "c": None, "d": 5, "e": 100}


def test_secondary_suppression_hides_the_smallest_other_cell():
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"presented": 20, "matched": 3,
                                               "not_matched": 17}
    out = suppress(counts, 5)
    assert out["matched"] is None
    assert out["not_matched"] is None  # else presented - not_matched = matched
    assert out["presented"] == 20


def test_secondary_suppression_uses_a_zero_cell_when_nothing_else_is_left():
    out = suppress({"presented": 0, "matched": 2, "not_matched": 0, "presentation_attacks": 0},
                   5)
    assert sum(v is None for v in out.values()) >= 2


def test_relation_with_two_hidden_cells_is_left_alone():
    out = suppress({"presented": 6, "matched": 3, "not_matched": 3}, 5)
    assert out == {"presented": 6, "matched": None, "not_matched": None}


def test_a_small_difference_between_matched_and_gates_opened_is_not_published():
    # 2 travellers matched but held (e.g. a thermal referral): matched - gates_opened would
    # reveal that small count, so one of the pair is suppressed too
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"presented": 40, "matched": 22,
                                               "not_matched": 18, "gates_opened": 20}
    out = suppress(counts, 5)
    assert out["matched"] is None or out["gates_opened"] is None
    assert "matched_held" not in out
    assert out["presented"] == 40
    # with both cells of presented = matched + not_matched still consistent
    assert sum(out[c] is None for c in ("presented", "matched", "not_matched")) != 1
    # a large difference is not sensitive: everything published
    counts |= {"gates_opened": 10}
    out = suppress(counts, 5)
    assert out["matched"] == 22 and out["gates_opened"] == 10


def test_laplace_noise_is_centred_and_non_negative():
    rng = random.Random(7)
    samples = [laplace_noise({"x": 50}, 1.0, rng)["x"] for _ in range(4000)]
    mean = sum(samples) / len(samples)
    assert 49.5 < mean < 50.5
    assert len(set(samples)) > 5
    assert min(laplace_noise({"x": 0}, 0.1, rng)["x"] for _ in range(200)) == 0


def test_noise_is_applied_when_epsilon_is_set():
    counts = dict.fromkeys(COUNT_FIELDS, 1000)
    noisy = apply_disclosure_control(counts, 5, 0.5, random.Random(1))
    assert any(v != 1000 for v in noisy.values())
    assert apply_disclosure_control(counts, 5, None) == counts


@pytest.mark.parametrize("mutate,needle", [
    (lambda m: m.update(name="Jane"), "unexpected"),
    (lambda m: m.update(schema="counts/2"), "unknown schema"),
    (lambda m: m.pop("gate"), "missing"),
    (lambda m: m["counts"].update(matched=3), "below k"),
    (lambda m: m["counts"].update(track_id=1), "exactly the fields"),
    (lambda m: m["counts"].update(matched=-5), ">= 0"),
    (lambda m: m["counts"].update(matched=True), "whole number"),
    (lambda m: m.update(window_start=1_800_000_001), "multiple"),
    (lambda m: m.update(device="a b"), "device"),
])
def test_decode_counts_rejects_off_schema_bodies(mutate, needle):
    msg = json.loads(_body(dict.fromkeys(COUNT_FIELDS, 10)))
    mutate(msg)
    with pytest.raises(SchemaError, match=needle):
        schema.decode_counts(json.dumps(msg).encode())


@pytest.mark.parametrize("data", [b"", b"\xff", b"[1]", b"{" * 5000, b'{"schema":"counts/1"}'])
def test_decode_counts_rejects_garbage(data):
    with pytest.raises(SchemaError):
        schema.decode_counts(data)


def test_uplink_headers_round_trip_and_reject_unknowns():
    assert schema.decode_header(schema.window_header(9, 5, 4))["prev"] == 4
    assert schema.decode_header(schema.window_header(9, 1, None))["prev"] is None
    assert schema.decode_header(schema.ack(9, 0))["type"] == "ack"
    assert schema.decode_header(schema.gap(9, 3))["seq"] == 3
    assert schema.decode_header(schema.reject("malformed", "x"))["reason"] == "x"
    assert schema.decode_header(schema.HEARTBEAT)["type"] == "heartbeat"
    for bad in [b'{"schema":"uplink/3","type":"heartbeat"}',
                b'{"schema":"uplink/2","type":"hello"}',
                b'{"schema":"uplink/2","type":"window","epoch":1,"seq":0,"prev":null}',
                b'{"schema":"uplink/2","type":"window","epoch":1,"seq":3,"prev":3}',
                b'{"schema":"uplink/2","type":"window","seq":3,"prev":null}',  # no epoch
                b'{"schema":"uplink/2","type":"heartbeat","x":1}']:
        with pytest.raises(SchemaError):
            schema.decode_header(bad)


def test_uplink_1_is_refused_with_a_clear_reason():
    with pytest.raises(schema.Rejected, match=r"uplink/1 is retired.*epoch") as info:
        schema.decode_header(b'{"schema":"uplink/1","type":"window","seq":1,"prev":null}')
    assert info.value.code == "retired_schema"
    old = json.loads(schema.reject_retired(str(info.value)))  # what an uplink/1 device reads
    assert old["schema"] == "uplink/1" and old["type"] == "reject"
    assert set(old) == {"schema", "type", "seq", "reason"} and "epoch" in old["reason"]


@pytest.mark.parametrize("epoch,seq,prev", [(0, 1, None), (1, 2, 1),
                                            (2**53 - 1, 10**12, 10**12 - 1)])
def test_fast_formatted_frames_equal_the_json_encoding(epoch, seq, prev):
    assert json.loads(schema.window_header(epoch, seq, prev)) == {
        "schema": "uplink/2", "type": "window", "epoch": epoch, "seq": seq, "prev": prev}
    assert json.loads(schema.ack(epoch, seq)) == {"schema": "uplink/2", "type": "ack",
                                                  "epoch": epoch, "seq": seq}
    assert json.loads(schema.gap(epoch, seq)) == {"schema": "uplink/2", "type": "gap",
                                                  "epoch": epoch, "seq": seq}
