"""Central on PostgreSQL: a throwaway cluster (central.pg_cluster: initdb + pg_ctl in a temporary
folder, unix socket only), a fresh database per test.

Versioned migrations; idempotent inserts (the constraint by itself, and the rules); the epoch
rules give the SQLite store's answers; two collectors deciding one device's windows at once
store each exactly once; a lost database connection (nothing answered, then reconnected); two
collector processes on one database with one killed mid-stream (0 lost, 0 duplicated); a real
uplink failing over between two collector processes and back; the hourly and daily roll-ups;
the command lines. (The fleet dashboard on PostgreSQL: tests/test_central_dashboard_postgres.py.)
"""

from __future__ import annotations

import json
import random
import re
import threading
import time

import psycopg
import pytest
from helpers.central_pg import (
    PgCollector,
    SimDevice,
    admit,
    central_keys,
    count,
    drive,
    windows,
)
from helpers.telemetry import (
    Net,
    SplitClock,
    admit_device,
    make_settings,
    produce,
    started_uplink,
)

from central.collector import Collector
from central.errors import CollectorError
from central.pg_schema import LATEST, migrate
from central.pg_store import INSERT_WINDOWS, PostgresStore, columns
from central.rollups import rebuild, refresh
from central.sequencing import Incoming
from central.store import StoreFailed
from foundation.curve_keys import load_public_key
from foundation.peers import wait_for
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def keys(tmp_path):
    return admit_device(tmp_path / "central", tmp_path / "device")


def _inc(seq: int, prev: int | None, *, epoch: int = 1, device: str = "d1",
         key: str = "K1") -> Incoming:
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"matched": seq, "faults": None}
    return Incoming(key, {"type": "window", "epoch": epoch, "seq": seq, "prev": prev},
                    {"device": device, "gate": "G1", "window_start": 1_800_000_000 + 300 * seq,
                     "window_s": 300, "k": 5, "epsilon": None, "counts": counts})


def _rows(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


# ------------------------------------------------------------------ schema and inserts

def test_migrations_are_versioned_applied_once_and_a_newer_database_is_refused(dsn):
    def run() -> None:
        with psycopg.connect(dsn) as conn:
            migrate(conn)

    threads = [threading.Thread(target=run) for _ in range(3)]  # collectors starting at once
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    run()
    assert [v for v, in _rows(dsn, "SELECT version FROM schema_version ORDER BY 1")] == list(
        range(1, LATEST + 1))
    tables = {t for t, in _rows(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = "
                                     "'public'")}
    assert {"devices", "epochs", "windows", "windows_hourly", "windows_daily"} <= tables
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO schema_version (version, description) VALUES (99, 'future')")
        conn.commit()
        with pytest.raises(CollectorError, match="newer than this collector"):
            migrate(conn)


def test_windows_are_inserted_idempotently(dsn):
    store = PostgresStore(dsn)
    try:
        batch = [_inc(s, s - 1 or None) for s in (1, 2, 3)]
        assert [o.kind for o in store.apply(batch, time.time())] == ["stored"] * 3
        again = store.apply(batch, time.time())
        assert [o.kind for o in again] == ["duplicate"] * 3
        assert {json.loads(o.reply)["seq"] for o in again} == {3}
        # the constraint by itself, without the rules: the same rows again insert nothing
        rows = [(r[0], r[1], r[2], "G1", 1_800_000_000, 300, 5, None, 0.0,
                 *([0] * len(COUNT_FIELDS))) for r in windows(dsn)]
        assert store.conn is not None
        with store.conn.transaction():
            cur = store.conn.execute(INSERT_WINDOWS, columns(rows))
            assert cur.rowcount == 0
    finally:
        store.close()
    assert windows(dsn) == [("d1", 1, s, s) for s in (1, 2, 3)]


class _Frame:
    def __init__(self, data: bytes, key: str = "DEVICEKEY") -> None:
        self.bytes, self._key = data, key

    def get(self, name: str) -> str:
        return self._key


def _win(epoch: int, seq: int, prev: int | None) -> list[_Frame]:
    body = json.dumps({"schema": "counts/1", "device": "cg-00000007", "gate": "GATE-7",
                       "window_start": 1_800_000_000 + 60 * seq, "window_s": 60, "k": 5,
                       "epsilon": None, "counts": dict.fromkeys(COUNT_FIELDS, 0)
                       | {"matched": 10 + seq}}).encode()
    return [_Frame(b"id"), _Frame(schema.window_header(epoch, seq, prev)), _Frame(body)]


def test_the_epoch_rules_give_the_sqlite_stores_answers(tmp_path, keys, dsn):
    e1, e2, e3 = 11, 22, 33
    script = [
        [_win(e1, s, s - 1 or None) for s in range(1, 11)],
        [_win(e2, 11, 10), _win(e2, 12, 11)],  # the original restarts: a new epoch
        # a backup restored at seq 7: re-sends, then its own new epoch in one stream (gap)
        [_win(e1, 5, None), _win(e1, 6, 5), _win(e1, 7, 6), _win(e3, 8, 7)],
        [_win(e3, 8, None), _win(e3, 9, 8)],
        [_win(e2, 13, 12)],  # the original was not retired: interleaving, refused
        [_win(e3, 10, None), _win(e3, 12, 11), _win(e1, 3, None)],
    ]
    answers = {}
    for name, db in (("sqlite", tmp_path / "c.db"), ("postgres", dsn)):
        c = Collector(keys, db, "tcp://127.0.0.1:0")
        answers[name] = [[json.loads(r) for _, r in c.handle_batch(batch)] for batch in script]
        stats = c.stats
        answers[name].append([stats.stored, stats.duplicates, stats.gaps, stats.interleaved,
                              stats.new_epochs, stats.reject_codes, stats.totals["matched"]])
        c.store.close()
    assert answers["postgres"] == answers["sqlite"]
    assert answers["postgres"][4][0]["code"] == "epoch_superseded"
    assert answers["postgres"][-1][:5] == [15, 4, 2, 1, 2]
    assert _rows(dsn, "SELECT epoch, last_seq, superseded_at IS NOT NULL FROM epochs "
                      "ORDER BY first_seen, epoch") == [(e1, 10, True), (e2, 12, True),
                                                         (e3, 10, False)]
    assert _rows(dsn, "SELECT epoch FROM devices") == [(e3,)]
    # a new collector on the database decides against what is stored
    c2 = Collector(keys, dsn, "tcp://127.0.0.1:0")
    got = [json.loads(r) for _, r in c2.handle_batch([_win(e1, 9, None), _win(e3, 11, 10)])]
    assert got == [{"schema": "uplink/2", "type": "ack", "epoch": e1, "seq": 10},
                   {"schema": "uplink/2", "type": "ack", "epoch": e3, "seq": 11}]
    c2.store.close()


def test_two_collectors_deciding_one_devices_windows_at_once_store_each_once(dsn):
    """Both get every window of one device (a device switching back and forth): the device's
    lock makes each decide against the other's commits."""
    stores = [PostgresStore(dsn), PostgresStore(dsn)]
    n, stored, failures = 300, [0, 0], []
    start = threading.Barrier(2)
    rng = random.Random(18)

    def collector(i: int) -> None:
        try:
            start.wait(10)
            acked = 0
            while acked < n:
                batch = [_inc(s, None if s == acked + 1 else s - 1)  # 5 or 9 at a time
                         for s in range(acked + 1, min(n, acked + 5 + 4 * i) + 1)]
                outcomes = stores[i].apply(batch, time.time())
                stored[i] += sum(o.kind == "stored" for o in outcomes)
                assert all(o.kind in ("stored", "duplicate") for o in outcomes), outcomes
                acked = max(json.loads(o.reply)["seq"] for o in outcomes)
                time.sleep(rng.random() / 500)  # shuffle who takes the device's lock first
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=collector, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    assert not failures, failures
    assert windows(dsn) == [("d1", 1, s, s) for s in range(1, n + 1)]
    assert sum(stored) == n and min(stored) > 0, stored  # both stored some, none twice


def test_a_lost_database_connection_answers_nothing_then_the_store_reconnects(dsn):
    store = PostgresStore(dsn)
    try:
        assert store.apply([_inc(1, None)], time.time())[0].kind == "stored"
        assert store.conn is not None
        pid = store.conn.info.backend_pid
        with psycopg.connect(dsn, autocommit=True) as admin:  # the server drops the session
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreFailed):
            store.apply([_inc(2, 1)], time.time())
        assert [o.kind for o in store.apply([_inc(2, 1), _inc(3, 2)], time.time())] == [
            "stored", "stored"]
    finally:
        store.close()
    assert [r[2] for r in windows(dsn)] == [1, 2, 3]


# ------------------------------------------------------------------ processes

def test_two_collectors_on_one_database_one_killed_mid_stream(tmp_path, dsn, ctx):
    keys = central_keys(tmp_path / "central")
    idents = admit(keys, 24)
    a = PgCollector(keys, dsn, tmp_path / "a.log").start()
    b = PgCollector(keys, dsn, tmp_path / "b.log").start()
    server = load_public_key(keys / "central.key")
    n = 150
    devices = [SimDevice(ctx, ident, server, [a.endpoint, b.endpoint] if i % 2 == 0
                         else [b.endpoint, a.endpoint], n)
               for i, ident in enumerate(idents)]
    killed: list[int] = []
    on_a: list[SimDevice] = []  # A's devices still sending when it was killed

    def kill_a_mid_stream() -> None:
        if not killed and count(dsn) >= len(devices) * n // 3:
            a.peer.kill()  # SIGKILL: its batch in progress is never committed nor acked
            killed.append(count(dsn))
            on_a.extend(d for d in devices[::2] if not d.done)

    try:
        drive(devices, 90, kill_a_mid_stream)
        assert killed and killed[0] < len(devices) * n, "killed before the end"
        expected = sorted((name, 1, s, 10 + s) for name, _, _ in idents
                          for s in range(1, n + 1))
        assert windows(dsn) == expected  # 0 lost, 0 duplicated, every payload its own
        assert on_a and all(d.switches >= 1 for d in on_a), "A's devices failed over to B"
        wait_for(lambda: b.stored() >= len(devices) * n // 2, what="B's totals")
    finally:
        b.peer.stop()
        a.peer.stop()


def test_a_real_uplink_fails_over_between_two_collectors_and_back(tmp_path, dsn):
    net = Net(tmp_path)
    a = PgCollector(net.central_keys, dsn, tmp_path / "a.log").start()
    b = PgCollector(net.central_keys, dsn, tmp_path / "b.log").start()
    settings = make_settings(tmp_path, a.port, central_endpoints=(a.endpoint, b.endpoint),
                             failback_s=1.5)
    clock = SplitClock()
    store, counters, uplink = started_uplink(tmp_path, net, clock, settings, create=True)
    a2 = None
    try:
        produce(clock, counters, 5)
        wait_for(lambda: count(dsn) == 5 and a.stored() == 5, what="5 windows through A")
        a.peer.kill()
        produce(clock, counters, 5, base=5)
        wait_for(lambda: count(dsn) == 10 and b.stored() == 5, timeout_s=30,
                 what="the uplink failed over to B")
        a2 = PgCollector(net.central_keys, dsn, tmp_path / "a2.log", port=a.port).start()
        i = 10
        end = time.monotonic() + 30
        while a2.stored() == 0:  # one window at a time until one goes through A again
            assert time.monotonic() < end, "the uplink never came back to A"
            produce(clock, counters, 1, base=i)
            i += 1
            wait_for(lambda i=i: count(dsn) == i, what="window stored")
            time.sleep(0.3)
        wait_for(lambda: uplink.status()["pending"] == 0, what="outbox drained")
        rows = windows(dsn)
        assert [r[2] for r in rows] == list(range(1, i + 1)), "each window once, in order"
        assert [r[3] for r in rows] == [10 + k for k in range(i)]
        assert len({r[1] for r in rows}) == 1  # one epoch: the device never restarted
    finally:
        uplink.stop()
        store.close()
        for c in (a2, b, a):
            if c is not None:
                c.peer.stop()


# ------------------------------------------------------------------ roll-ups, commands

def test_hourly_and_daily_roll_ups_are_refreshed_incrementally(dsn, capsys):
    store = PostgresStore(dsn)
    try:
        for device, key in (("d1", "K1"), ("d2", "K2")):  # 36 windows: 3 hours of 5 minutes
            store.apply([_inc(s, s - 1 or None, device=device, key=key) for s in range(1, 37)],
                        time.time())
        assert store.conn is not None
        first = refresh(store.conn)
        assert (first.device_hours, first.device_days) == (2 * 4, 2)  # 1..36 span 4 hours
        assert refresh(store.conn).device_hours == 0  # nothing new
        want = _rows(dsn, "SELECT device, window_start - window_start % 3600, count(*), "
                          "sum(matched), max(peak_in_view), count(*) FILTER (WHERE faults IS "
                          "NULL) FROM windows GROUP BY 1, 2 ORDER BY 1, 2")
        hourly = ("SELECT device, hour, windows, matched, peak_in_view, suppressed_cells "
                  "FROM windows_hourly ORDER BY 1, 2")
        assert _rows(dsn, hourly) == want
        assert _rows(dsn, "SELECT device, windows, matched FROM windows_daily ORDER BY 1") == [
            ("d1", 36, sum(range(37))), ("d2", 36, sum(range(37)))]
        store.apply([_inc(37, 36)], time.time())  # one more window of d1
        late = refresh(store.conn)
        assert (late.device_hours, late.device_days) == (1, 1)
        assert _rows(dsn, "SELECT windows, matched FROM windows_daily WHERE device = 'd1'") == [
            (37, sum(range(38)))]
        before = _rows(dsn, hourly)
        assert rebuild(store.conn).device_hours == 8 and _rows(dsn, hourly) == before
    finally:
        store.close()
    from central.__main__ import main

    assert main(["rollup", "--db", dsn]) == 0
    assert "rollup device_hours=0 device_days=0" in capsys.readouterr().out
    with psycopg.connect(dsn) as conn:  # a wrong hour is put right by a rebuild, a day at a time
        conn.execute("UPDATE windows_hourly SET matched = -1")
    assert main(["rollup", "--db", dsn, "--rebuild"]) == 0
    out, err = capsys.readouterr()
    assert "rollup device_hours=8 device_days=2" in out
    assert re.search(r"rollup rebuilt (\d+)/\1 days", err)
    assert _rows(dsn, hourly) == before


def test_a_window_stored_during_a_rebuild_for_a_day_already_rebuilt_is_not_missed(dsn):
    store = PostgresStore(dsn)
    try:
        store.apply([_inc(s, s - 1 or None) for s in range(1, 4)], time.time())
        assert store.conn is not None
        with psycopg.connect(dsn) as other:  # the rebuild's own connection
            seen: list[tuple[int, int]] = []

            def meanwhile(done: int, total: int) -> None:
                seen.append((done, total))
                if len(seen) == 1:  # a collector commits a window of the day just rebuilt
                    store.apply([_inc(4, 3)], time.time())

            done = rebuild(other, meanwhile)
        assert seen == [(1, 1)]
        assert (done.device_hours, done.device_days) == (2, 2)  # the day, then its late mark
        assert _rows(dsn, "SELECT windows, matched FROM windows_daily") == [(4, 1 + 2 + 3 + 4)]
        assert _rows(dsn, "SELECT count(*) FROM rollup_dirty") == [(0,)]
    finally:
        store.close()


def test_a_postgres_database_that_cannot_be_reached_is_one_clear_line(keys, tmp_path, capsys):
    from central.collect_cmd import main

    bad = f"postgresql://nobody@/nodb?host={tmp_path}/nowhere&port=1"
    assert main(["--keys", str(keys), "--db", bad]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: cannot connect to the PostgreSQL database")
