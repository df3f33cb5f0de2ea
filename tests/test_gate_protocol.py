"""gate/1 wire format: every message round-trips; anything malformed is a ProtocolError.

Decoding is bounded and strict: too large or too deep before parsing, no strings for numbers,
no bools for integers, no NaN/Infinity, no unknown fields; grant ids carry their issue time.
"""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from wire.gate import (
    ERROR_CODES,
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    Ack,
    DenyCmd,
    FaultEvent,
    HeartbeatCmd,
    LaneState,
    OpenCmd,
    OverrideCmd,
    PassageEvent,
    ProtocolError,
    ResetCmd,
    StateEvent,
    StatusCmd,
    TailgatingEvent,
    decode_ack,
    decode_command,
    decode_event,
    encode,
    error_ack,
    grant_issued_s,
    new_grant_id,
    request_id_of,
)

GRANT = new_grant_id(1234.5678)
COMMANDS = [
    OpenCmd(id="r1", lane="A", grant_id=GRANT, ttl_ms=8000, deadline=12.5),
    DenyCmd(id="r2", lane="B"),
    ResetCmd(id="r3", lane="A", reason="checked the lane", actor="staff-7"),
    OverrideCmd(id="r4", lane="A", action="close", reason="wheelchair", actor="sup1"),
    HeartbeatCmd(id="r5"),
    StatusCmd(id="r6"),
]
EVENTS = [
    PassageEvent(seq=1, ts=1.5, lane="A", grant_id="g-1"),
    PassageEvent(seq=2, lane="A"),
    TailgatingEvent(seq=3, lane="A", grant_id="g-1"),
    StateEvent(seq=4, lane="B", state=LaneState.EMERGENCY_OPEN, reason="fire_alarm"),
    FaultEvent(seq=5, active=True, reason="serial port error"),
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.cmd)
def test_commands_round_trip(cmd) -> None:
    data = encode(cmd)
    assert json.loads(data)["schema"] == "gate/1"
    assert decode_command(data) == cmd


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event)
def test_events_round_trip(event) -> None:
    assert decode_event(encode(event)) == event


def test_ack_round_trip() -> None:
    ack = Ack(id="r1", cmd="status", ok=True, lanes={"A": LaneState.CLOSED}, info={"io": "ok"})
    assert decode_ack(encode(ack)) == ack


def _cmd(**fields) -> bytes:
    return json.dumps({"schema": "gate/1", "kind": "command", "id": "x1", **fields}).encode()


@pytest.mark.parametrize(("data", "code"), [
    (b"", "malformed"),
    (b"\xff\xfe", "malformed"),
    (b"not json", "malformed"),
    (b"[1, 2]", "malformed"),
    (b'{"kind": "command", "cmd": "heartbeat"}', "malformed"),
    (b'{"schema": "gate/2", "kind": "command", "cmd": "heartbeat"}', "unsupported_schema"),
    (_cmd(cmd="launch"), "unknown_command"),
    (_cmd(cmd=None), "unknown_command"),
    (_cmd(cmd="open", lane="A", grant_id=GRANT), "malformed"),  # no ttl
    (_cmd(cmd="open", lane="A", grant_id=GRANT, ttl_ms=0), "malformed"),
    (_cmd(cmd="open", lane="A", grant_id=GRANT, ttl_ms="8000x"), "malformed"),
    (_cmd(cmd="open", lane="A", grant_id=GRANT, ttl_ms="8000"), "malformed"),  # lax: was taken
    (_cmd(cmd="open", lane="A", grant_id=GRANT, ttl_ms=True), "malformed"),
    (_cmd(cmd="open", lane="A", grant_id=GRANT, ttl_ms=8000.0), "malformed"),
    (_cmd(cmd="open", lane="A", grant_id=GRANT, ttl_ms=120_001), "malformed"),
    (_cmd(cmd="open", lane="A", grant_id="g-1", ttl_ms=800), "malformed"),  # no issue time
    (_cmd(cmd="open", lane="A B", grant_id=GRANT, ttl_ms=800), "malformed"),
    (_cmd(cmd="open", lane="A", grant_id="g" * 65, ttl_ms=800), "malformed"),
    (_cmd(cmd="open", lane=["A"], grant_id=GRANT, ttl_ms=800), "malformed"),
    (_cmd(cmd="heartbeat", deadline="12"), "malformed"),
    (_cmd(cmd="heartbeat", deadline=-1), "malformed"),
    (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "deadline": Infinity}',
     "malformed"),
    (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "deadline": NaN}',
     "malformed"),
    (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "deadline": 1e999}',
     "malformed"),
    (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "cmd": "open"}', "malformed"),
    (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "id": ' + b"9" * 400 + b"}",
     "malformed"),
    (b"[" * 1000 + b"]" * 1000, "too_deep"),
    (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "x": [[[[[]]]]]}',
     "too_deep"),
    (_cmd(cmd="deny", lane="A", extra=1), "malformed"),
    (_cmd(cmd="override", lane="A", action="explode", reason="r", actor="a"), "malformed"),
    (_cmd(cmd="reset", lane="A", reason="", actor="a"), "malformed"),
    (json.dumps({"schema": "gate/1", "kind": "event", "cmd": "heartbeat"}).encode(),
     "malformed"),
    (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "pad": "'
     + b"x" * MAX_MESSAGE_BYTES + b'"}', "too_large"),
    (b"[" * (MAX_MESSAGE_BYTES + 1), "too_large"),  # size is checked before depth
])
def test_malformed_commands_are_rejected_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_command(data)
    assert info.value.code == code and code in ERROR_CODES
    assert str(info.value)
    error_ack(info.value, request_id_of(data))  # the error ack can always be built


def test_nesting_within_the_limit_still_decodes_and_strings_do_not_count() -> None:
    ack = Ack(ok=True, lanes={"A": LaneState.CLOSED}, info={"io": "[[[[[[[[{{{{{{"})
    assert decode_ack(encode(ack)) == ack
    assert MAX_DEPTH >= 2


def test_grant_ids_carry_their_issue_time() -> None:
    grant = new_grant_id(1234.5678)
    assert grant_issued_s(grant) == 1234.567
    assert grant_issued_s("g-1") is None and grant_issued_s("staff:sup1") is None
    assert new_grant_id(5.0) != new_grant_id(5.0)  # a random part
    now = time.monotonic()
    assert abs(grant_issued_s(new_grant_id(now)) - now) < 0.002
    with pytest.raises(ValueError):
        new_grant_id(-1.0)


def test_surrogates_in_an_error_are_escaped_not_fatal() -> None:
    # lone surrogates (valid JSON escapes, not encodable): the error ack must still encode
    for data in (b'{"schema": "gate/1", "kind": "command", "cmd": "heartbeat", "\\ud800": 1}',
                 b'{"schema": "gate/1", "kind": "command", "cmd": "\\udfff"}'):
        with pytest.raises(ProtocolError) as info:
            decode_command(data)
        assert decode_ack(encode(error_ack(info.value, request_id_of(data)))).code


def test_unknown_version_says_what_to_do() -> None:
    with pytest.raises(ProtocolError, match="upgrade"):
        decode_event(b'{"schema": "gate/9", "kind": "event", "event": "state"}')


def test_unknown_event_kind() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_event(b'{"schema": "gate/1", "kind": "event", "event": "party"}')
    assert info.value.code == "unknown_event"


def test_error_ack_echoes_request_id() -> None:
    data = _cmd(cmd="launch")
    with pytest.raises(ProtocolError) as info:
        decode_command(data)
    ack = error_ack(info.value, request_id_of(data))
    assert ack.id == "x1" and not ack.ok and ack.code == "unknown_command"
    assert request_id_of(b"\xff") is None and request_id_of(b"[]") is None
    assert request_id_of(b"[" * 3000) is None
    assert request_id_of(b'{"id": "\\ud800"}') is None


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_command(data)


@given(st.dictionaries(st.sampled_from(["schema", "kind", "cmd", "lane", "grant_id", "ttl_ms",
                                        "id", "action", "reason", "actor", "deadline"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=20), st.booleans(),
                                 st.floats(allow_nan=False, allow_infinity=False),
                                 st.sampled_from(["gate/1", "command", "open", "A", GRANT,
                                                  "8000"]))))
def test_random_objects_decode_or_raise_protocol_error(obj: dict) -> None:
    try:
        cmd = decode_command(json.dumps(obj).encode())
    except ProtocolError:
        return
    assert decode_command(encode(cmd)) == cmd


def test_client_refuses_bad_arguments_before_sending() -> None:
    from gate_controller.client import GateClient
    from gate_controller.keys import ClientKeys

    public, secret = zmq.curve_keypair()
    keys = ClientKeys(public, secret, zmq.curve_keypair()[0], "daemon")
    c = GateClient("ipc:///tmp/gate-test-nowhere", "ipc:///tmp/gate-test-nowhere-ev", 100,
                   subscribe=False, keys=keys)
    try:
        with pytest.raises(ProtocolError, match="lane"):
            c.open("A B", GRANT, 1000)
        with pytest.raises(ProtocolError, match="ttl_ms"):
            c.open("A", GRANT, 0)
        with pytest.raises(ProtocolError, match="ttl_ms"):
            c.open("A", GRANT, "8000")  # type: ignore[arg-type]
        with pytest.raises(ProtocolError, match="grant_id"):
            c.open("A", "g1", 1000)
        with pytest.raises(ProtocolError, match="action"):
            c.override("A", "explode", "r", "s")  # type: ignore[arg-type]
    finally:
        c.close()
