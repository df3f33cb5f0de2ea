"""Fuzz the real controller process: 10,000 random and malformed frames, then business as usual.

`python -m gate_controller run` on private ipc sockets with keys from a temp folder takes the
frames from a client holding the daemon's key (the only way past the CurveZMQ handshake to the
decoder), with unauthenticated senders mixed in. Every frame up to 64 KiB gets exactly one
error ack; the process stays up, nothing crashes its handler, and afterwards it still answers
an authenticated heartbeat and status correctly.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from gate_controller.drill import ControllerProcess, write_config
from gate_controller.keys import client_keys, create_gate_keys
from wire.gate import MAX_FRAME_BYTES, LaneState, new_grant_id

pytestmark = [pytest.mark.slow, pytest.mark.integration]
FRAMES = 10_000


@pytest.fixture
def controller() -> Iterator[ControllerProcess]:
    d = Path(tempfile.mkdtemp(prefix="gf", dir="/tmp"))  # ipc paths must stay short
    cfg = write_config(d / "gate.toml", {
        "command_endpoint": f"ipc://{d}/s/cmd", "event_endpoint": f"ipc://{d}/s/ev",
        "sim_control_endpoint": f"ipc://{d}/s/sim", "lanes": ["A"],
        **create_gate_keys(d / "keys")}, level="warning")
    ctl = ControllerProcess(cfg, command="run")
    try:
        yield ctl
    finally:
        ctl.stop()
        shutil.rmtree(d, ignore_errors=True)


def _mutations(rng: random.Random) -> list[Callable[[], bytes]]:
    def command(**fields: object) -> bytes:
        return json.dumps({"schema": "gate/1", "kind": "command", **fields}).encode()

    def junk() -> object:
        return rng.choice([None, True, False, -1, 0, 2**63, 10**40, 1.5, "", "8000", "A B",
                           "x" * rng.randrange(1, 300), [], {}, [1, [2]], {"a": {"b": 1}}])

    def random_bytes() -> bytes:
        return rng.randbytes(rng.randrange(0, 700))

    def deep() -> bytes:
        depth = rng.randrange(2, 5000)
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
        tail = closer * depth if rng.random() < 0.5 else ""
        return (opener * depth + "1" + tail).encode()

    def deep_in_a_command() -> bytes:
        depth = rng.randrange(3, 900)
        return command(cmd="status", x=json.loads("[" * depth + "]" * depth))

    def bad_fields() -> bytes:
        fields = {"cmd": rng.choice(["open", "deny", "reset", "override", "heartbeat", "status",
                                     "launch", 7, None]),
                  "lane": junk(), "grant_id": rng.choice([junk(), "g1-zz",
                                                          new_grant_id(1.0)]),
                  "ttl_ms": junk(), "deadline": junk(), "id": junk(), "actor": junk(),
                  "reason": junk(), "action": junk()}
        keep = rng.sample(sorted(fields), rng.randrange(1, len(fields)))
        return command(**{k: fields[k] for k in keep})

    def constants() -> bytes:
        value = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 30])
        field = rng.choice(["ttl_ms", "deadline", "id"])
        return (b'{"schema":"gate/1","kind":"command","cmd":"open","lane":"A",'
                b'"grant_id":"' + new_grant_id(1.0).encode() + b'","' + field.encode()
                + b'":' + value.encode() + b"}")

    def truncated() -> bytes:
        whole = command(cmd="override", lane="A", action="open", reason="r", actor="sup1")
        return whole[: rng.randrange(0, len(whole))]

    def wrong_envelope() -> bytes:
        return rng.choice([b'{"schema":"gate/2","kind":"command","cmd":"status"}',
                           b'{"schema":"gate/1","kind":"event","cmd":"status"}',
                           b'{"schema":"gate/1","kind":"command","cmd":"status","cmd":"open"}',
                           b"[]", b'"gate/1"', b"null", b"\xef\xbb\xbf{}"])

    def big() -> bytes:
        return b'{"pad":"' + b"x" * rng.randrange(4090, MAX_FRAME_BYTES - 10) + b'"}'

    weighted = [random_bytes] * 4 + [deep] * 3 + [deep_in_a_command] + [bad_fields] * 5 \
        + [constants] * 2 + [truncated] * 2 + [wrong_envelope] * 2
    return [*weighted, big]  # big last: the test picks it every `big_every` frames


def test_ten_thousand_bad_frames_leave_the_controller_serving(
        controller: ControllerProcess) -> None:
    rng = random.Random(20_13)
    gs = controller.gate
    keys = client_keys(gs, "daemon")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (
        keys.server, keys.public, keys.secret)
    sock.connect(gs.command_endpoint)
    strangers = []
    for mechanism in ("null", "curve"):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        if mechanism == "curve":
            s.curve_publickey, s.curve_secretkey = zmq.curve_keypair()
            s.curve_serverkey = keys.server
        s.connect(gs.command_endpoint)
        strangers.append(s)
    makers = _mutations(rng)
    big_every = 200  # frames near 64 KiB are few: they cost most
    try:
        sent = answered = accepted = 0
        t0 = time.monotonic()
        while sent < FRAMES:
            batch = []
            for _ in range(min(100, FRAMES - sent)):
                maker = makers[-1] if (sent + len(batch)) % big_every == 0 else \
                    rng.choice(makers[:-1])
                batch.append(maker())
            for frame in batch:
                if rng.random() < 0.05:  # a multipart message: one error ack too
                    sock.send_multipart([frame, b"second part"])
                else:
                    sock.send(frame)
                for s in strangers:
                    with contextlib.suppress(zmq.Again):
                        s.send(frame, zmq.NOBLOCK)
            for _ in batch:
                assert sock.poll(10_000), f"no ack after {answered} frames"
                reply = json.loads(sock.recv())
                assert reply["kind"] == "ack" and (reply["ok"] or reply["code"]), reply
                answered += 1
                accepted += reply["ok"]  # a random frame may be a valid heartbeat or status
            sent += len(batch)
            assert controller.proc.poll() is None, "the controller died"
        assert answered == FRAMES
        took = time.monotonic() - t0
        for s in strangers:  # the strangers never got a single answer
            assert not s.poll(0)
        # still serving, and correctly: an authenticated heartbeat makes the lane automatic
        ack = controller.client.heartbeat()
        assert ack.ok and ack.lanes == {"A": LaneState.CLOSED}
        detail = controller.client.status_detail()
        assert detail.lanes == {"A": LaneState.CLOSED}
        info = detail.info or {}
        assert int(info["bad_frames"]) == FRAMES - accepted and accepted < FRAMES // 50
        assert "internal" not in info["bad_frame_codes"], info
        assert info["daemon"] == "alive" and info["fire_alarm"] == "clear"
        assert controller.proc.poll() is None
        print(f"{FRAMES} frames in {took:.1f} s, {accepted} valid; refused: "
              f"{info['bad_frame_codes']}")
    finally:
        for s in [sock, *strangers]:
            s.close()
        ctx.term()
    log = controller.log_path.read_text()
    assert "Traceback" not in log and "gate_frame_failed" not in log
