"""Fault tests on loopback: the real collector process, the real Uplink, the real ConsentStore.

Collector down then up, collector killed mid-stream, device restarted with unacked windows, a
device key not in the allow-list, malformed messages and out-of-order windows.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import threading
import time

import pytest
from helpers.telemetry import (
    WINDOW_S,
    Net,
    SplitClock,
    make_settings,
    make_uplink,
    open_store,
    produce,
    started_uplink,
)
from helpers.telemetry import body as _body
from helpers.telemetry import raw_device as _raw_device
from helpers.telemetry import reply as _reply
from structlog.testing import capture_logs

from edge.telemetry.counters import COUNT_FIELDS, WindowCounters
from foundation.peers import free_port, wait_for
from wire import telemetry as schema

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

E = 77  # the epoch of the raw device's windows


@pytest.fixture
def net(tmp_path):
    """Central keys (allow-list holds the device key), device keys, a collector on a free port."""
    n = Net(tmp_path)
    yield n
    n.close()


def assert_exactly_once_in_order(rows: list[tuple], n: int) -> None:
    assert [r[1] for r in rows] == list(range(1, n + 1)), "every window exactly once"
    assert [r[4] for r in rows] == [10 + i for i in range(n)], "payloads match their windows"
    starts = [r[2] for r in rows]
    assert starts == sorted(starts) and len(set(starts)) == n
    received = [r[3] for r in rows]
    assert received == sorted(received), "stored in sequence order"


def test_collector_down_for_a_while_then_up(tmp_path, net):
    clock = SplitClock()
    store, counters, uplink = started_uplink(tmp_path, net, clock, create=True)
    try:
        produce(clock, counters, 12)
        wait_for(lambda: uplink.status()["pending"] == 12, what="windows queued")
        time.sleep(1.0)  # several heartbeats and resends into the void
        assert uplink.status()["connected"] is False
        collector = net.collector().start()
        wait_for(lambda: uplink.status()["pending"] == 0, what="outbox drained")
        assert uplink.status()["connected"] is True
        assert uplink.status()["last_ack_seq"] == 12
        assert store.outbox.pending(100) == []
        assert_exactly_once_in_order(collector.rows(), 12)
        wait_for(lambda: any("totals windows=12" in ln for ln in collector.lines),
                 what="running totals printed")
    finally:
        uplink.stop()
        store.close()


def test_collector_killed_mid_stream_loses_and_duplicates_nothing(tmp_path, net):
    clock = SplitClock()
    store = open_store(tmp_path, clock, create=True)
    counters = WindowCounters(clock, WINDOW_S)
    collector = net.collector().start()
    # slow resends and a patient heartbeat: the stream goes on over the new connection while
    # windows sent just before the kill are lost, so central must spot the gap itself
    settings = make_settings(tmp_path, net.port, heartbeat_s=0.5, heartbeat_liveness=8,
                             resend_initial_s=3.0, resend_max_s=3.0, max_in_flight=256)
    uplink = make_uplink(settings, counters, store.outbox, clock, net.device_keys, net.central_keys)
    uplink.start()
    n = 150
    try:
        done = threading.Event()

        def stream():
            for i in range(n):
                produce(clock, counters, 1, base=i)
                time.sleep(0.01)
            done.set()

        producer = threading.Thread(target=stream)
        producer.start()
        wait_for(lambda: len(collector.rows()) >= 5, what="first windows stored")
        collector.proc.send_signal(signal.SIGSTOP)  # hangs while windows keep coming...
        time.sleep(0.3)
        collector.kill()  # ...then dies: the windows it had received are lost, never acked
        collector = net.collector().start()
        producer.join()
        wait_for(lambda: done.is_set() and len(collector.rows()) >= n
                 and uplink.status()["pending"] == 0, what="drained")
        assert_exactly_once_in_order(collector.rows(), n)
    finally:
        uplink.stop()
        store.close()


def test_device_restarted_with_unacked_windows_sends_them(tmp_path, net):
    clock = SplitClock()
    settings = make_settings(tmp_path, net.port)
    store, counters, first = started_uplink(tmp_path, net, clock, settings, create=True)
    produce(clock, counters, 7)
    wait_for(lambda: first.status()["pending"] == 7, what="windows queued")
    first.stop()
    store.close()
    # the device comes back: new process state, same encrypted store
    store = open_store(tmp_path, clock, create=False)
    assert len(store.outbox.pending(100)) == 7
    counters = WindowCounters(clock, WINDOW_S)
    second = make_uplink(settings, counters, store.outbox, clock, net.device_keys, net.central_keys)
    with capture_logs() as events:
        second.start()
        try:
            wait_for(lambda: second.status()["pending"] == 7, what="outbox counted at start")
            collector = net.collector().start()
            produce(clock, counters, 2, base=7)
            wait_for(lambda: len(collector.rows()) == 9 and second.status()["pending"] == 0,
                     what="all windows delivered")
            assert_exactly_once_in_order(collector.rows(), 9)
        finally:
            second.stop()
            store.close()
    # the uplink's log events carry ids and counts only: never a payload or key material
    assert any(e["event"] == "telemetry_window_queued" for e in events)
    allowed = {"event", "log_level", "seq", "pending", "inflight", "backoff_s",
               "central_last_seq", "error", "detail", "waiting", "timeout_s", "reason", "frames",
               "resumed", "closed",  # open windows taken back at start: counts of windows
               "epoch", "code",  # the store's epoch (a random id), a reject's code
               "endpoint", "previous"}  # central's address (failover between collectors)
    for e in events:
        assert set(e) <= allowed, e
        assert not any(isinstance(v, bytes | bytearray) for v in e.values()), e


def test_device_key_not_in_allow_list_gets_nothing_accepted(tmp_path, net):
    (net.central_keys / "gate7.key").unlink()
    collector = net.collector().start()
    clock = SplitClock()
    store, counters, uplink = started_uplink(tmp_path, net, clock, create=True)
    try:
        produce(clock, counters, 3)
        time.sleep(2.0)
        assert collector.rows() == []
        assert uplink.status() == {"pending": 3, "last_ack_seq": None, "connected": False}
        assert "telemetry_device_denied" in collector.log.read_text()
        assert len(store.outbox.pending(100)) == 3  # kept for when central admits the key
        # admitting the key later (the allow-list is re-read when its folder changes) delivers
        shutil.copy(net.device_keys / "device.key", net.central_keys / "gate7.key")
        wait_for(lambda: len(collector.rows()) == 3, timeout_s=30, what="delivery once admitted")
        assert_exactly_once_in_order(collector.rows(), 3)
    finally:
        uplink.stop()
        store.close()


def test_malformed_messages_are_rejected_logged_and_serving_goes_on(tmp_path, net, ctx):
    collector = net.collector().start()
    sock = _raw_device(ctx, net, collector.endpoint)
    try:
        bad = [
            ("malformed", [b"\x00not json"]),
            ("unsupported_schema",
             [b'{"schema":"uplink/9","type":"window","seq":1,"prev":null}', _body(10)]),
            ("bad_field",
             [schema.window_header(E, 1, None), _body(10, extra={"name": "Jane Doe"})]),
            ("below_k", [schema.window_header(E, 1, None), _body(3)]),  # must be suppressed
            ("unsupported_schema", [schema.window_header(E, 1, None), b"{}"]),
            ("unexpected", [schema.window_header(E, 1, None)]),  # body missing
            ("unexpected", [schema.HEARTBEAT, b"extra"]),
            ("unexpected", [schema.ack(E, 1)]),  # devices do not ack
        ]
        for code, frames in bad:
            sock.send_multipart(frames)
            answer = _reply(sock)
            assert (answer["type"], answer["code"]) == ("reject", code), frames
        assert collector.proc.poll() is None
        assert collector.log.read_text().count("telemetry_message_rejected") == len(bad)
        assert "Jane" not in collector.log.read_text()
        # still serving: heartbeats answered, a valid window stored
        sock.send_multipart([schema.HEARTBEAT])
        assert _reply(sock)["type"] == "heartbeat"
        sock.send_multipart([schema.window_header(E, 1, None), _body(10)])
        assert _reply(sock) == {"schema": "uplink/2", "type": "ack", "epoch": E, "seq": 1}
        assert [r[1] for r in collector.rows()] == [1]
    finally:
        sock.close()


def test_out_of_order_windows_get_gap_and_duplicates_are_not_stored(tmp_path, net, ctx):
    collector = net.collector().start()
    sock = _raw_device(ctx, net, collector.endpoint)
    try:
        sock.send_multipart([schema.window_header(E, 2, 1), _body(11, 1_800_000_060)])
        assert _reply(sock) == {"schema": "uplink/2", "type": "gap", "epoch": E, "seq": 0}
        sock.send_multipart([schema.window_header(E, 1, None), _body(10)])
        assert _reply(sock)["seq"] == 1
        sock.send_multipart([schema.window_header(E, 2, 1), _body(11, 1_800_000_060)])
        assert _reply(sock) == {"schema": "uplink/2", "type": "ack", "epoch": E, "seq": 2}
        sock.send_multipart([schema.window_header(E, 1, None), _body(10)])  # a resend
        assert _reply(sock) == {"schema": "uplink/2", "type": "ack", "epoch": E, "seq": 2}
        sock.send_multipart([schema.window_header(E, 4, 3), _body(13, 1_800_000_180)])
        assert _reply(sock)["type"] == "gap"
        assert [(r[1], r[4]) for r in collector.rows()] == [(1, 10), (2, 11)]
        # another device id from the same key is refused (ids are bound to keys)
        other = _body(10, extra={"device": "cg-impostor"})
        sock.send_multipart([schema.window_header(E, 3, 2), other])
        assert _reply(sock)["type"] == "reject"
    finally:
        sock.close()
    collector.stop()
    assert any(ln.startswith("totals windows=2") for ln in collector.lines)


def test_restart_mid_window_loses_no_counts(tmp_path, net):
    """The window that reaches central holds the counts from before and after the restart."""
    collector = net.collector().start()
    clock = SplitClock()
    settings = make_settings(tmp_path, net.port)
    window = int(clock.now()) // WINDOW_S * WINDOW_S
    store, counters, first = started_uplink(tmp_path, net, clock, settings, create=True)
    counters.add("matched", 6)
    counters.add("presented", 6)
    counters.observe_peak(3)
    clock.wall.advance(10)
    # saved within a few seconds while running (a crash loses at most that), not only at stop
    wait_for(lambda: store.outbox.load_open_windows() == [
        (window, WINDOW_S, dict.fromkeys(COUNT_FIELDS, 0) | {"matched": 6, "presented": 6,
                                                              "peak_in_view": 3})],
        timeout_s=10, what="the open window saved in the store")
    first.stop()
    store.close()
    clock.wall.advance(20)  # back inside the same window
    store, counters, second = started_uplink(tmp_path, net, clock, settings)
    try:
        counters.add("matched", 4)
        counters.add("presented", 4)
        counters.observe_peak(2)
        wait_for(lambda: counters.snapshot().counts["matched"] == 10, timeout_s=10,
                 what="the saved counts resumed into the open window")
        clock.wall.advance(WINDOW_S)  # the window ends
        wait_for(lambda: len(collector.rows()) == 1 and second.status()["pending"] == 0,
                 what="the window delivered")
        ((_dev, seq, start, _recv, matched),) = collector.rows()
        # 6 before + 4 after; either part alone would be 6 or suppressed (4 < k)
        assert (seq, start, matched) == (1, window, 10)
        assert all(row[0] != window for row in store.outbox.load_open_windows())
    finally:
        second.stop()
        store.close()
    with sqlite3.connect(collector.db) as db:
        body = db.execute("SELECT presented, peak_in_view FROM windows").fetchone()
    assert body == (10, None)  # peak is a maximum (3), not a sum: 3 < k is suppressed


def test_restart_after_the_window_ended_sends_it_once(tmp_path, net):
    collector = net.collector().start()
    clock = SplitClock()
    settings = make_settings(tmp_path, net.port)
    window = int(clock.now()) // WINDOW_S * WINDOW_S
    store, counters, first = started_uplink(tmp_path, net, clock, settings, create=True)
    counters.add("matched", 7)
    counters.add("presented", 7)
    first.stop()  # saved at stop
    store.close()
    clock.wall.advance(2 * WINDOW_S + 5)  # the device was off past the window's end
    for _restart in range(2):  # a second restart must not send it again
        store, counters, uplink = started_uplink(tmp_path, net, clock, settings)
        try:
            wait_for(lambda u=uplink: len(collector.rows()) >= 1
                     and u.status()["pending"] == 0, what="the saved window delivered")
            time.sleep(0.5)  # room for a duplicate to show up
            rows = collector.rows()
            assert [(r[1], r[2], r[4]) for r in rows] == [(1, window, 7)]
            assert store.outbox.load_open_windows() in ([], [(window + 2 * WINDOW_S, WINDOW_S,
                                                      dict.fromkeys(COUNT_FIELDS, 0))])
        finally:
            uplink.stop()
            store.close()


def test_outbox_rows_carry_the_epoch_of_their_append(tmp_path):
    store = open_store(tmp_path, SplitClock(), create=True)
    try:
        first = store.outbox.epoch  # made by the migration that created the store
        assert 1 <= first <= schema.MAX_EPOCH
        assert store.outbox.append(b"a") == 1
        second = store.outbox.renew_epoch()
        assert second != first and store.outbox.epoch == second
        assert store.outbox.append(b"b") == 2
        assert store.outbox.pending_windows(10) == [(1, first, b"a"), (2, second, b"b")]
        assert store.outbox.pending(10) == [(1, b"a"), (2, b"b")]
    finally:
        store.close()


def test_windows_queued_before_the_epoch_migration_keep_epoch_0(tmp_path, monkeypatch):
    import edge.consent.database as database

    clock = SplitClock()
    monkeypatch.setattr(database, "LATEST", 2)  # a store made before migration 3
    store = open_store(tmp_path, clock, create=True)
    with store.db.write() as conn:
        conn.execute("INSERT INTO outbox (created_at, payload) VALUES (0, x'7131')")
    store.close()
    monkeypatch.undo()
    store = open_store(tmp_path, clock, create=False)  # migrated to 3 on open
    try:
        assert store.outbox.pending_windows(10) == [(1, 0, b"q1")]  # central's legacy epoch
        assert store.outbox.epoch >= 1
        store.outbox.append(b"q2")
        assert store.outbox.pending_windows(10)[1] == (2, store.outbox.epoch, b"q2")
    finally:
        store.close()


def test_the_uplink_endpoint_list_fails_over_backs_off_and_fails_back(tmp_path):
    from edge.telemetry.endpoints import Endpoints

    port = free_port()  # only a settings value: nothing binds it
    assert make_settings(tmp_path, port).telemetry.endpoints == (f"tcp://127.0.0.1:{port}",)
    e = Endpoints(["tcp://a:1", "tcp://b:1", "tcp://c:1"], failback_s=10.0,
                  backoff_initial_s=1.0, backoff_max_s=4.0)
    assert e.connecting(0.0) == "tcp://a:1"
    assert [e.leave(silent=True), e.current] == [0.0, "tcp://b:1"]  # next one at once
    assert [e.leave(silent=True), e.current] == [0.0, "tcp://c:1"]
    assert [e.leave(silent=True), e.current] == [1.0, "tcp://a:1"]  # all silent: back off
    assert [e.leave(silent=True), e.leave(silent=True), e.leave(silent=True)] == [0, 0, 2.0]
    e.leave(silent=True)
    assert e.current == "tcp://b:1"
    e.connecting(100.0)
    e.heard()  # b answers: the backoff starts over
    assert not e.failback_due(109.0) and e.failback_due(110.0)
    assert [e.leave(silent=False), e.current] == [0.0, "tcp://a:1"]
    assert not e.failback_due(1e9)  # on the first endpoint: nothing to fail back to
