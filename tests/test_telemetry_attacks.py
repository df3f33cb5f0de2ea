"""Attacks on the collector by an admitted device (issue 13), against the real collector process.

Each test is named after the attack: nested frames, huge sequence numbers, huge counts and
window starts, an oversized message (ZMQ_MAXMSGSIZE, the collector's RSS), a device restored
from a backup (its sequence numbers repeat: stored under a new epoch), and a clone running
beside the original (epochs interleaving: refused with an alert). The slow fuzz sends 10,000
random and malformed frames and then checks that a valid window is still stored correctly.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import time

import pytest
import zmq
from helpers.telemetry import (
    Net,
    SplitClock,
    body,
    make_settings,
    produce,
    raw_device,
    reply,
    started_uplink,
)

from edge.telemetry.counters import COUNT_FIELDS
from foundation.peers import wait_for
from wire import telemetry as schema

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

E1, E2 = 1001, 2002
STEP = 60


@pytest.fixture
def net(tmp_path):
    n = Net(tmp_path)
    yield n
    n.close()


def _window(epoch: int, seq: int, prev: int | None, matched: int = 10) -> list[bytes]:
    return [schema.window_header(epoch, seq, prev), body(matched, 1_800_000_000 + STEP * seq)]


def _refused(sock: zmq.Socket, frames: list[bytes], code: str) -> dict:
    sock.send_multipart(frames)
    answer = reply(sock)
    assert (answer["type"], answer.get("code")) == ("reject", code), (frames[0][:80], answer)
    return answer


def _stored(sock: zmq.Socket, epoch: int, seq: int, prev: int | None, matched: int = 10) -> None:
    sock.send_multipart(_window(epoch, seq, prev, matched))
    assert reply(sock) == {"schema": "uplink/2", "type": "ack", "epoch": epoch, "seq": seq}


def _totals(collector) -> str:
    collector.stop()
    return [ln for ln in collector.lines if ln.startswith("totals ")][-1]


def test_nested_body_does_not_kill_the_collector(net, ctx):
    collector = net.collector().start()
    sock = raw_device(ctx, net, collector.endpoint)
    try:
        header = schema.window_header(E1, 1, None)
        deep_counts = body(10).replace(b'"matched": 10', b'"matched": ' + b"[" * 50 + b"]" * 50)
        for frames in ([header, b"[" * 4000],  # RecursionError in json.loads before the fix
                       [header, b'{"a":' * 600 + b"1" + b"}" * 600],
                       [header, deep_counts],
                       [b'{"schema":"uplink/2","type":"window","epoch":' + b"[" * 200]):
            _refused(sock, frames, "too_deep")
        _refused(sock, [header, b"[" * 6000], "too_large")  # over 4 KiB: never parsed
        assert collector.proc.poll() is None
        _stored(sock, E1, 1, None)
    finally:
        sock.close()
    assert [r[1] for r in collector.rows()] == [1]
    assert " rejected=5 " in _totals(collector)


def test_huge_seq_is_refused_and_later_windows_are_stored(net, ctx):
    collector = net.collector().start()
    sock = raw_device(ctx, net, collector.endpoint)
    try:
        _stored(sock, E1, 1, None)
        _stored(sock, E1, 2, 1)
        _refused(sock, _window(E1, 2**63, 2), "malformed")  # beyond 64 bits: OverflowError
        for seq in (2**63 - 1, 2**53, schema.MAX_SEQ + 1):  # 2**63-1 was stored before the fix
            _refused(sock, _window(E1, seq, 2), "out_of_range")
            _refused(sock, _window(E1, seq, None), "out_of_range")
        _refused(sock, [b'{"schema":"uplink/2","type":"window","epoch":1,"seq":"3","prev":2}',
                        body(13)], "bad_field")
        _refused(sock, [b'{"schema":"uplink/2","type":"window","epoch":1,"seq":3.0,"prev":2}',
                        body(13)], "bad_field")
        _refused(sock, _window(2**53, 3, 2), "out_of_range")  # epochs are bounded too
        for seq in (3, 4, 5):  # the device's real windows are stored, not taken for duplicates
            _stored(sock, E1, seq, seq - 1, matched=10 + seq)
    finally:
        sock.close()
    assert [(r[1], r[4]) for r in collector.rows()] == [(1, 10), (2, 10), (3, 13), (4, 14),
                                                        (5, 15)]


def test_huge_count_and_window_start_are_refused(net, ctx):
    collector = net.collector().start()
    sock = raw_device(ctx, net, collector.endpoint)
    header = schema.window_header(E1, 1, None)

    def raw_body(**fields: object) -> bytes:
        text = body(10).decode()
        for name, value in fields.items():
            msg = json.loads(text)
            target = msg["counts"] if name in COUNT_FIELDS else msg
            target[name] = "@@"
            text = json.dumps(msg).replace('"@@"', str(value))
        return text.encode()

    try:
        cases = [
            ("malformed", raw_body(matched=10**20)),  # OverflowError in sqlite before the fix
            ("malformed", raw_body(window_start=3 * 10**20)),
            ("out_of_range", raw_body(matched=10**9 + 1)),
            ("out_of_range", raw_body(matched=2**63 - 1)),
            ("out_of_range", raw_body(window_start=2**62 // 60 * 60)),
            ("out_of_range", raw_body(window_start=4_102_444_800)),  # 2100
            ("out_of_range", raw_body(window_start=0)),
            ("out_of_range", raw_body(window_s=86_401)),
            ("out_of_range", raw_body(k=0)),
            ("bad_field", raw_body(matched='"12"')),
            ("bad_field", raw_body(matched="true")),
            ("bad_field", raw_body(window_s="60.0")),
            ("malformed", raw_body(epsilon="NaN")),
            ("malformed", raw_body(epsilon="Infinity")),
            ("malformed", raw_body(epsilon="1e999")),
            ("malformed", body(10).replace(b'"gate"', b'"device": "x", "gate"')),  # a repeat
        ]
        for code, data in cases:
            _refused(sock, [header, data], code)
        assert collector.proc.poll() is None
        _stored(sock, E1, 1, None, matched=10**9)  # the top of the range is a count
    finally:
        sock.close()
    assert [(r[1], r[2], r[4]) for r in collector.rows()] == [(1, 1_800_000_060, 10**9)]
    totals = _totals(collector)
    assert f" rejected={len(cases)} " in totals
    assert "rejects=bad_field:3,malformed:6,out_of_range:7" in totals


def test_oversized_message_is_dropped_without_memory_growth(net, ctx):
    collector = net.collector().start()
    sock = raw_device(ctx, net, collector.endpoint, timeout_ms=3000)
    try:
        sock.send(schema.HEARTBEAT)
        assert reply(sock)["type"] == "heartbeat"  # connected, handshake done
        header = schema.window_header(E1, 1, None)
        # over the 4 KiB body limit but under ZMQ_MAXMSGSIZE: read, and answered too_large
        _refused(sock, [header, b" " * (schema.SOCKET_MAXMSGSIZE - 1024)], "too_large")
        time.sleep(0.5)
        before = collector.vm_rss_kib()
        sock.send_multipart([header, b"x" * (64 << 20)])  # 64 MB
        with pytest.raises(zmq.Again):  # libzmq drops it and the connection: no answer
            sock.recv_multipart()
        after = collector.vm_rss_kib()
        assert after - before < 16 << 10, f"RSS grew from {before} KiB to {after} KiB"
        assert collector.proc.poll() is None
    finally:
        sock.close()
    again = raw_device(ctx, net, collector.endpoint)
    try:
        _stored(again, E1, 1, None)
    finally:
        again.close()
    assert [r[1] for r in collector.rows()] == [1]
    assert collector.vm_rss_kib() - before < 16 << 10


def test_restored_device_windows_are_stored_under_a_new_epoch(tmp_path, net):
    collector = net.collector().start()
    clock = SplitClock()
    settings = make_settings(tmp_path, net.port)
    db = tmp_path / "device" / "store.db"
    epochs = []

    def run(n: int, base: int, *, create: bool = False) -> None:
        store, counters, uplink = started_uplink(tmp_path, net, clock, settings, create=create)
        try:
            produce(clock, counters, n, base=base)
            wait_for(lambda: uplink.status()["pending"] == 0
                     and {10 + base + i for i in range(n)} <= {r[4] for r in collector.rows()},
                     what="the windows stored")
            epochs.append(store.outbox.epoch)
        finally:
            uplink.stop()
            store.close()

    run(3, 0, create=True)  # seq 1..3
    backup = tmp_path / "backup.db"
    shutil.copy2(db, backup)  # the operator's backup, taken with the daemon stopped
    run(3, 3)  # seq 4..6
    for leftover in db.parent.glob("store.db-*"):
        leftover.unlink()
    shutil.copy2(backup, db)  # "restore it from backup", as the error messages advise
    run(3, 6)  # the restored store numbers its windows 4.. again
    assert len(set(epochs)) == 3, "a new epoch at every start"
    rows = collector.epoch_rows()
    real = [(e, s, m) for e, s, m in rows if m]  # (a restored empty open window may add a 0)
    assert [m for _, _, m in real] == list(range(10, 19)), "every window stored exactly once"
    assert [e for e, _, _ in real] == [epochs[0]] * 3 + [epochs[1]] * 3 + [epochs[2]] * 3
    first = [s for e, s, _ in real if e == epochs[1]]
    again = [s for e, s, _ in real if e == epochs[2]]
    assert first[0] == 4 and set(again) & set(first), "the restored store reused seqs"
    with sqlite3.connect(collector.db) as con:
        assert con.execute("SELECT COUNT(*) FROM epochs").fetchone() == (3,)
    totals = _totals(collector)
    assert " interleaved=0 " in totals and " new_epochs=2 " in totals
    assert " rejected=0 " in totals


def test_clone_interleaving_is_refused_with_an_alert(net, ctx):
    collector = net.collector().start()
    original = raw_device(ctx, net, collector.endpoint)
    clone = raw_device(ctx, net, collector.endpoint)  # same device id, same key: a copied box
    try:
        _stored(original, E1, 1, None, matched=11)
        _stored(original, E1, 2, 1, matched=12)
        _stored(clone, E2, 3, None, matched=23)  # the clone starts: a new epoch, stored
        answer = _refused(original, _window(E1, 3, 2, matched=13), "epoch_superseded")
        assert (answer["epoch"], answer["seq"]) == (E1, 3)
        assert "another copy of this store" in answer["reason"]
        original.send_multipart(_window(E1, 2, None, matched=12))  # a re-send: acked, harmless
        assert reply(original) == {"schema": "uplink/2", "type": "ack", "epoch": E1, "seq": 2}
        _refused(original, _window(E1, 4, None, matched=14), "epoch_superseded")
        _stored(clone, E2, 4, 3, matched=24)
    finally:
        original.close()
        clone.close()
    assert [(r[1], r[4]) for r in collector.rows()] == [(1, 11), (2, 12), (3, 23), (4, 24)]
    log = collector.log.read_text()
    assert log.count("telemetry_epoch_interleaving") == 2
    totals = _totals(collector)
    assert " interleaved=2 " in totals and " duplicates=1 " in totals


def test_uplink_1_device_is_told_its_version_is_retired(net, ctx):
    collector = net.collector().start()
    sock = raw_device(ctx, net, collector.endpoint)
    try:
        sock.send_multipart([b'{"schema":"uplink/1","type":"window","seq":1,"prev":null}',
                             body(10)])
        (frame,) = sock.recv_multipart()
        old = json.loads(frame)  # in the form an uplink/1 device decodes and logs
        assert (old["schema"], old["type"]) == ("uplink/1", "reject")
        assert "retired" in old["reason"] and "uplink/2" in old["reason"]
    finally:
        sock.close()
    assert collector.rows() == []
    assert "rejects=retired_schema:1" in _totals(collector)


# ------------------------------------------------------------------------------ fuzz

def _fuzz_value(rng: random.Random) -> object:
    return rng.choice([
        None, True, False, 0, -1, 1, 2**53, 2**63 - 1, -(2**63), 10**9 + 1, 1.5, -0.0, 1e308,
        "", "1", "x" * rng.randint(0, 300), [], {}, [1, [2, [3]]], {"a": {"b": {"c": 1}}},
        rng.randint(-(2**64), 2**64), rng.random(), "\u2603" * rng.randint(1, 20)])


def _fuzz_frames(rng: random.Random) -> list[bytes]:
    """One message: random bytes, a mutated valid one, deep nesting, big numbers, bad frames."""
    seq = rng.randint(1, 40)
    valid = _window(rng.choice([E1, E2, 0]), seq, rng.choice([None, seq - 1 or None]),
                    rng.choice([0, 5, 10**9]))
    kind = rng.randrange(9)
    if kind == 0:
        return [rng.randbytes(rng.randint(0, 600)) for _ in range(rng.randint(1, 3))]
    if kind in (1, 2):
        part = rng.randrange(2)
        msg = json.loads(valid[part])
        target = msg["counts"] if part == 1 and rng.random() < 0.5 else msg
        name = rng.choice([*target, "extra"])
        if rng.random() < 0.2:
            target.pop(name, None)
        else:
            target[name] = _fuzz_value(rng)
        valid[part] = json.dumps(msg).encode()
        return valid
    if kind == 3:
        depth = rng.randint(3, 3000)
        return [valid[0], b"[" * depth + b"]" * depth][: rng.randint(1, 2)]
    if kind == 4:
        text = valid[rng.randrange(2)]
        cut = rng.randint(0, len(text))
        return [text[:cut] + rng.randbytes(rng.randint(0, 8)) + text[cut:]]
    if kind == 5:
        return [valid[0], valid[1], valid[1]][: rng.choice([1, 3])]
    if kind == 6:
        return [valid[0], b" " * rng.randint(4000, schema.SOCKET_MAXMSGSIZE - 512)]
    if kind == 7:
        big = str(rng.choice([2**63, 10**20, 3 * 10**20, -(2**70)])).encode()
        return [valid[0].replace(b'"seq":', b'"seq":' + big + b",\"x\":"), valid[1]]
    return [rng.choice([schema.HEARTBEAT, schema.ack(E1, 1), schema.gap(E1, 1),
                        schema.reject("malformed", "x"),
                        b'{"schema":"uplink/1","type":"heartbeat"}'])]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_collector_survives_10000_random_and_malformed_frames(net, ctx):
    collector = net.collector().start()
    sock = raw_device(ctx, net, collector.endpoint, timeout_ms=20_000)
    rng = random.Random(13)
    kinds: dict[str, int] = {}
    sent = 0
    try:
        while sent < 10_000:
            chunk = min(250, 10_000 - sent)
            for _ in range(chunk):
                sock.send_multipart(_fuzz_frames(rng))
            for _ in range(chunk):  # every message gets exactly one answer
                (frame,) = sock.recv_multipart()
                answer = json.loads(frame)
                key = answer.get("code") or (
                    "retired" if answer["schema"] == "uplink/1" else answer["type"])
                kinds[key] = kinds.get(key, 0) + 1
            sent += chunk
            assert collector.proc.poll() is None, f"collector ended after {sent} messages"
        assert sum(kinds.values()) == 10_000
        assert {"malformed", "too_deep", "too_large", "bad_field", "out_of_range", "below_k",
                "unexpected", "unsupported_schema", "retired", "ack"} <= set(kinds), kinds
        # still serving: a valid window of a fresh epoch is stored exactly as sent
        fresh = 2**52 + 13
        sock.send_multipart([schema.window_header(fresh, 7, None),
                             body(77, 1_800_000_000, counts={"presented": 99, "faults": None})])
        assert reply(sock) == {"schema": "uplink/2", "type": "ack", "epoch": fresh, "seq": 7}
    finally:
        sock.close()
    with sqlite3.connect(collector.db) as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM windows WHERE epoch = ?", (fresh,)).fetchone()
        assert (row["seq"], row["window_start"], row["matched"], row["presented"],
                row["faults"], row["gate"]) == (7, 1_800_000_000, 77, 99, None, "GATE-7")
        for r in con.execute("SELECT * FROM windows"):  # whatever fuzz got in is in range
            assert 1 <= r["seq"] <= schema.MAX_SEQ and 0 <= r["epoch"] <= schema.MAX_EPOCH
            assert schema.MIN_WINDOW_START <= r["window_start"] < schema.MAX_WINDOW_START
            assert all(r[f] is None or 0 <= r[f] <= schema.MAX_COUNT for f in COUNT_FIELDS)
    totals = _totals(collector)
    rejected = sum(v for k, v in kinds.items() if k not in ("ack", "gap", "heartbeat"))
    assert f" rejected={rejected} " in totals, (kinds, totals)
