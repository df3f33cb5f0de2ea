"""Fault tests on loopback: the real collector process, the real Uplink, the real ConsentStore.

Collector down then up, collector killed mid-stream, device restarted with unacked windows, a
device key not in the allow-list, malformed messages and out-of-order windows.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import zmq
from structlog.testing import capture_logs

from edge.consent.keys import write_key_file
from edge.consent.store import ConsentStore
from edge.telemetry.counters import COUNT_FIELDS, WindowCounters
from edge.telemetry.uplink import Uplink
from foundation.clock import FakeClock
from foundation.curve_keys import create_keypair, load_keypair, load_public_key
from foundation.peers import COLLECTOR_READY, Peer, collector_argv, free_port, wait_for
from foundation.settings import Settings
from wire import telemetry as schema

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[1]
WINDOW_S = 60


class SplitClock:
    """Wall time under the test's control (windows), real monotonic time (heartbeats)."""

    def __init__(self) -> None:
        self.wall = FakeClock(start=1_800_000_000.0)

    def now(self) -> float:
        return self.wall.now()

    def monotonic(self) -> float:
        return time.monotonic()


class CollectorProc:
    """`python -m central collect` as a child process (foundation.peers), logging to `log`."""

    def __init__(self, keys: Path, db: Path, port: int, log: Path) -> None:
        self.keys, self.db, self.port, self.log = keys, db, port, log
        self.peer = Peer("collector", collector_argv(keys, db, self.endpoint, print_every_s=0.2),
                         log, ready_line=COLLECTOR_READY, cwd=ROOT)

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def proc(self) -> subprocess.Popen:
        assert self.peer.proc is not None
        return self.peer.proc

    @property
    def lines(self) -> list[str]:
        """What this run of the collector printed (stdout and its log events)."""
        return self.peer.lines()

    def start(self) -> CollectorProc:
        self.peer.start()
        return self

    def kill(self) -> None:
        self.peer.kill()

    def stop(self) -> None:
        self.peer.stop()

    def rows(self) -> list[tuple]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as db:
            return db.execute("SELECT device, seq, window_start, received_at, matched "
                              "FROM windows ORDER BY device, seq").fetchall()


@pytest.fixture
def net(tmp_path):
    """Central keys (allow-list holds the device key), device keys, a collector on a free port."""
    central_dir = tmp_path / "central"
    create_keypair(central_dir, "central")
    dev_dir = tmp_path / "device" / "keys"
    create_keypair(dev_dir, "device")
    shutil.copy(dev_dir / "device.key", central_dir / "gate7.key")
    procs: list[CollectorProc] = []

    class Net:
        central_keys = central_dir
        device_keys = dev_dir
        port = free_port()

        def collector(self) -> CollectorProc:
            c = CollectorProc(central_dir, tmp_path / "central.db", self.port,
                              tmp_path / "collector.log")
            procs.append(c)
            return c

    yield Net()
    for c in procs:
        c.stop()


def make_settings(tmp_path: Path, port: int, **telemetry) -> Settings:
    return Settings.model_validate({
        "device": {"device_id": "cg-00000007", "gate_id": "GATE-7", "data_dir": str(tmp_path)},
        "telemetry": {"central_endpoint": f"tcp://127.0.0.1:{port}", "window_s": WINDOW_S,
                      "k_anonymity": 5, "heartbeat_s": 0.2, "heartbeat_liveness": 3,
                      "resend_initial_s": 0.2, "resend_max_s": 1.0, "max_in_flight": 8}
                     | telemetry,
    })


def open_store(tmp_path: Path, clock, create: bool) -> ConsentStore:
    keys = tmp_path / "device" / "keys"
    if create:
        write_key_file(keys / "store.key")
        write_key_file(keys / "ref.key")
    return ConsentStore.open(tmp_path / "device" / "store.db", keys / "store.key",
                             keys / "ref.key", clock, create=create)


def make_uplink(settings, counters, outbox, clock, keys_dir: Path, central_keys: Path) -> Uplink:
    return Uplink(settings, counters, outbox, clock, load_keypair(keys_dir / "device.key_secret"),
                  load_public_key(central_keys / "central.key"))


def started_uplink(tmp_path: Path, net, clock, settings: Settings | None = None, *,
                   create: bool = False) -> tuple[ConsentStore, WindowCounters, Uplink]:
    """A real store (new or reopened), fresh counters and a running uplink to `net`."""
    store = open_store(tmp_path, clock, create=create)
    counters = WindowCounters(clock, WINDOW_S)
    uplink = make_uplink(settings or make_settings(tmp_path, net.port), counters, store.outbox,
                         clock, net.device_keys, net.central_keys)
    uplink.start()
    return store, counters, uplink


def produce(clock: SplitClock, counters: WindowCounters, n: int, base: int = 0) -> None:
    """n windows; window i carries matched = 10 + base + i so each is recognisable."""
    for i in range(n):
        counters.add("matched", 10 + base + i)
        counters.add("presented", 10 + base + i)
        clock.wall.advance(WINDOW_S)  # the uplink thread closes the window


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
               "resumed", "closed"}  # open windows taken back at start: counts of windows
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


def _raw_device(ctx: zmq.Context, net, endpoint: str) -> zmq.Socket:
    public, secret = load_keypair(net.device_keys / "device.key_secret")
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = load_public_key(net.central_keys / "central.key")
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    return sock


def _body(matched: int, start: int = 1_800_000_000, extra: dict | None = None) -> bytes:
    msg = {"schema": "counts/1", "device": "cg-00000007", "gate": "GATE-7",
           "window_start": start, "window_s": 60, "k": 5, "epsilon": None,
           "counts": dict.fromkeys(COUNT_FIELDS, 0) | {"matched": matched}}
    msg.update(extra or {})
    return json.dumps(msg).encode()


def _reply(sock: zmq.Socket) -> dict:
    (frame,) = sock.recv_multipart()
    return schema.decode_header(frame)


def test_malformed_messages_are_rejected_logged_and_serving_goes_on(tmp_path, net, ctx):
    collector = net.collector().start()
    sock = _raw_device(ctx, net, collector.endpoint)
    try:
        bad = [
            [b"\x00not json"],
            [b'{"schema":"uplink/9","type":"window","seq":1,"prev":null}', _body(10)],
            [schema.window_header(1, None), _body(10, extra={"name": "Jane Doe"})],
            [schema.window_header(1, None), _body(3)],  # below k: must have been suppressed
            [schema.window_header(1, None), b"{}"],
            [schema.window_header(1, None)],  # body missing
            [schema.HEARTBEAT, b"extra"],
            [schema.ack(1)],  # devices do not ack
        ]
        for frames in bad:
            sock.send_multipart(frames)
            assert _reply(sock)["type"] == "reject", frames
        assert collector.proc.poll() is None
        assert collector.log.read_text().count("telemetry_message_rejected") == len(bad)
        assert "Jane" not in collector.log.read_text()
        # still serving: heartbeats answered, a valid window stored
        sock.send_multipart([schema.HEARTBEAT])
        assert _reply(sock)["type"] == "heartbeat"
        sock.send_multipart([schema.window_header(1, None), _body(10)])
        assert _reply(sock) == {"schema": "uplink/1", "type": "ack", "seq": 1}
        assert [r[1] for r in collector.rows()] == [1]
    finally:
        sock.close()


def test_out_of_order_windows_get_gap_and_duplicates_are_not_stored(tmp_path, net, ctx):
    collector = net.collector().start()
    sock = _raw_device(ctx, net, collector.endpoint)
    try:
        sock.send_multipart([schema.window_header(2, 1), _body(11, 1_800_000_060)])
        assert _reply(sock) == {"schema": "uplink/1", "type": "gap", "seq": 0}
        sock.send_multipart([schema.window_header(1, None), _body(10)])
        assert _reply(sock)["seq"] == 1
        sock.send_multipart([schema.window_header(2, 1), _body(11, 1_800_000_060)])
        assert _reply(sock) == {"schema": "uplink/1", "type": "ack", "seq": 2}
        sock.send_multipart([schema.window_header(1, None), _body(10)])  # a resend
        assert _reply(sock) == {"schema": "uplink/1", "type": "ack", "seq": 2}
        sock.send_multipart([schema.window_header(4, 3), _body(13, 1_800_000_180)])
        assert _reply(sock)["type"] == "gap"
        assert [(r[1], r[4]) for r in collector.rows()] == [(1, 10), (2, 11)]
        # another device id from the same key is refused (ids are bound to keys)
        other = _body(10, extra={"device": "cg-impostor"})
        sock.send_multipart([schema.window_header(3, 2), other])
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
