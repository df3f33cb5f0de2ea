"""The reference collector in-process: built in one thread and served in another, and its
command line's answers to bad input (one line, what to do next, no traceback).
"""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
import zmq
from helpers.telemetry import admit_device

from central.collect_cmd import main
from central.collector import Collector, CollectorError
from foundation.curve_keys import load_keypair, load_public_key
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keys(tmp_path):
    admit_device(tmp_path / "central", tmp_path / "device")
    return tmp_path


def _body() -> bytes:
    return json.dumps({
        "schema": "counts/1", "device": "cg-00000007", "gate": "GATE-7",
        "window_start": 1_800_000_000, "window_s": 60, "k": 5, "epsilon": None,
        "counts": dict.fromkeys(COUNT_FIELDS, 0) | {"matched": 12}}).encode()


def test_built_in_one_thread_served_in_another(keys, capsys, ctx):
    collector = Collector(keys / "central", keys / "c.db", "tcp://127.0.0.1:0",
                          print_every_s=3600)  # built here, in the test's thread
    stop, ready = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            collector.serve(stop, ready)
        except BaseException as exc:  # reported by the test
            failed.append(exc)
            ready.set()

    t = threading.Thread(target=serve)
    t.start()
    assert ready.wait(10) and not failed, failed
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.curve_serverkey = load_public_key(keys / "central" / "central.key")
        sock.curve_publickey, sock.curve_secretkey = load_keypair(
            keys / "device" / "device.key_secret")
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 5000)
        sock.connect(collector.endpoint)
        sock.send_multipart([schema.window_header(5, 1, None), _body()])
        assert schema.decode_header(sock.recv()) == {"schema": "uplink/2", "type": "ack",
                                                     "epoch": 5, "seq": 1}
    finally:
        sock.close()
        stop.set()
        t.join(10)
    assert not failed, failed  # the database was used and closed from the serving thread
    with sqlite3.connect(keys / "c.db") as db:
        assert db.execute("SELECT device, seq, matched FROM windows").fetchall() == [
            ("cg-00000007", 1, 12)]
    assert "totals windows=1" in capsys.readouterr().out
    with pytest.raises(CollectorError, match="already served"):
        collector.serve(threading.Event())


def _error_line(capsys, argv: list[str], code: int = 1) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err  # (structlog lines may come first, on stderr too)
    assert "Traceback" not in err and err.count("error:") == 1, err
    last = err.splitlines()[-1]
    assert last.startswith("error: "), err
    return last


def test_bad_command_lines_get_one_clear_line(keys, tmp_path, capsys):
    db = str(tmp_path / "c.db")
    err = _error_line(capsys, ["--keys", str(tmp_path / "nowhere"), "--db", db])
    assert "is not a folder" in err and "NAME.key" in err
    (tmp_path / "empty").mkdir()
    err = _error_line(capsys, ["--keys", str(tmp_path / "empty"), "--db", db])
    assert "central.key_secret is missing" in err and "--init-key" in err
    err = _error_line(capsys, ["--keys", str(keys / "central"), "--db", db,
                               "--server-key", str(tmp_path / "none.key_secret")])
    assert "--server-key" in err and "not a file" in err
    err = _error_line(capsys, ["--keys", str(keys / "central"), "--db", db,
                               "--bind", "garbage"])
    assert "cannot listen on garbage" in err and "tcp://HOST:PORT" in err
    err = _error_line(capsys, ["--keys", str(keys / "central"), "--db",
                               str(tmp_path / "no" / "such" / "dir.db")])
    assert "cannot use database" in err
    with pytest.raises(SystemExit) as exc:
        main(["--keys", str(keys / "central"), "--db", db, "--print-every", "0"])
    assert exc.value.code == 2 and "--print-every" in capsys.readouterr().err


# ------------------------------------------------------------------ sequencing, in-process

class _Frame:
    """What Collector.handle_batch reads of a zmq.Frame: its bytes and the Curve User-Id."""

    def __init__(self, data: bytes, key: str = "DEVICEKEY") -> None:
        self.bytes = data
        self._key = key

    def get(self, name: str) -> str:
        assert name == "User-Id"
        return self._key


def _win(epoch: int, seq: int, prev: int | None, key: str = "DEVICEKEY") -> list[_Frame]:
    return [_Frame(b"id"), _Frame(schema.window_header(epoch, seq, prev), key),
            _Frame(_body(), key)]


def _answers(collector: Collector, *messages: list[_Frame]) -> list[dict]:
    return [json.loads(reply) for _, reply in collector.handle_batch(list(messages))]


def _ack(kind: str, epoch: int, seq: int) -> dict:
    return {"schema": "uplink/2", "type": kind, "epoch": epoch, "seq": seq}


def test_a_restored_store_resends_old_windows_then_starts_a_new_epoch(keys):
    c = Collector(keys / "central", keys / "c.db", "tcp://127.0.0.1:0")
    e1, e2, e3 = 11, 22, 33
    assert _answers(c, *(_win(e1, s, s - 1 or None) for s in range(1, 11)))[-1] == \
        _ack("ack", e1, 10)
    # the original restarts (a new epoch, seqs go on)
    assert _answers(c, _win(e2, 11, 10), _win(e2, 12, 11)) == [_ack("ack", e2, 11),
                                                               _ack("ack", e2, 12)]
    # a backup taken at seq 7 with 5..7 unacked is restored: it sends those, then its new
    # epoch's windows, numbered 8.. again, in one stream
    got = _answers(c, _win(e1, 5, None), _win(e1, 6, 5), _win(e1, 7, 6), _win(e3, 8, 7))
    assert got == [_ack("ack", e1, 10)] * 3 + [_ack("gap", e2, 12)]
    assert _answers(c, _win(e3, 8, None), _win(e3, 9, 8)) == [_ack("ack", e3, 8),
                                                              _ack("ack", e3, 9)]
    # the original was not retired: its next window interleaves with the restored copy
    (refused,) = _answers(c, _win(e2, 13, 12))
    assert (refused["type"], refused["code"]) == ("reject", "epoch_superseded")
    assert (c.stats.stored, c.stats.duplicates, c.stats.gaps) == (14, 3, 1)
    assert (c.stats.interleaved, c.stats.new_epochs) == (1, 2)
    assert c.stats.reject_codes == {"epoch_superseded": 1}
    # all of it is on disk: a new collector on the file knows every epoch's last seq
    c2 = Collector(keys / "central", keys / "c.db", "tcp://127.0.0.1:0")
    assert _answers(c2, _win(e1, 9, None), _win(e3, 10, 9), _win(e2, 13, 12))[:2] == [
        _ack("ack", e1, 10), _ack("ack", e3, 10)]
    assert c2.stats.interleaved == 1
    with sqlite3.connect(keys / "c.db") as db:
        assert db.execute("SELECT epoch, last_seq, superseded_at IS NOT NULL FROM epochs "
                          "ORDER BY first_seen, epoch").fetchall() == [
            (e1, 10, 1), (e2, 12, 1), (e3, 10, 0)]
        assert db.execute("SELECT epoch, last_seq FROM devices").fetchall() == [(e3, 10)]
        assert db.execute("SELECT COUNT(*) FROM windows").fetchone() == (15,)


def test_a_failure_inside_the_collector_is_an_internal_reject(keys, monkeypatch):
    c = Collector(keys / "central", keys / "c.db", "tcp://127.0.0.1:0")

    def boom(data: bytes) -> dict:
        raise ValueError("a bug")

    monkeypatch.setattr(schema, "decode_counts", boom)
    (answer,) = _answers(c, _win(1, 1, None))
    assert (answer["type"], answer["code"], answer["seq"]) == ("reject", "internal", 1)
    monkeypatch.undo()
    assert _answers(c, _win(1, 1, None)) == [_ack("ack", 1, 1)]
    assert c.stats.reject_codes == {"internal": 1}


def test_a_collector_file_from_uplink_1_is_upgraded_in_place(keys):
    cols = ", ".join(f"{name} INTEGER" for name in COUNT_FIELDS)
    with sqlite3.connect(keys / "old.db") as db:  # the file as the uplink/1 collector made it
        db.executescript(f"""
            CREATE TABLE devices (device TEXT PRIMARY KEY, public_key TEXT NOT NULL UNIQUE,
                                  last_seq INTEGER NOT NULL);
            CREATE TABLE windows (device TEXT NOT NULL, seq INTEGER NOT NULL,
                gate TEXT NOT NULL, window_start INTEGER NOT NULL, window_s INTEGER NOT NULL,
                k INTEGER NOT NULL, epsilon REAL, received_at REAL NOT NULL, {cols},
                PRIMARY KEY (device, seq)) WITHOUT ROWID;
            INSERT INTO devices VALUES ('cg-00000007', 'DEVICEKEY', 2);""")
        for seq in (1, 2):
            db.execute(f"INSERT INTO windows VALUES ('cg-00000007', {seq}, 'GATE-7', "
                       f"{1_800_000_000 + 60 * seq}, 60, 5, NULL, 0.0, "
                       + ", ".join(["7"] * len(COUNT_FIELDS)) + ")")
    c = Collector(keys / "central", keys / "old.db", "tcp://127.0.0.1:0")
    assert c.stats.stored == 2 and c.stats.totals["matched"] == 14
    # windows the device queued before its upgrade carry epoch 0: deduplicated as before
    assert _answers(c, _win(0, 2, None), _win(0, 3, 2), _win(9, 4, 3)) == [
        _ack("ack", 0, 2), _ack("ack", 0, 3), _ack("ack", 9, 4)]
    with sqlite3.connect(keys / "old.db") as db:
        assert db.execute("SELECT epoch, seq FROM windows ORDER BY seq").fetchall() == [
            (0, 1), (0, 2), (0, 3), (9, 4)]
