"""The reference collector in-process: built in one thread and served in another, and its
command line's answers to bad input (one line, what to do next, no traceback).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading

import pytest
import zmq

from central.collect_cmd import main
from central.collector import Collector, CollectorError
from foundation.curve_keys import create_keypair, load_keypair, load_public_key
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keys(tmp_path):
    central = tmp_path / "central"
    create_keypair(central, "central")
    create_keypair(tmp_path / "device", "device")
    shutil.copy(tmp_path / "device" / "device.key", central / "gate7.key")
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
        sock.send_multipart([schema.window_header(1, None), _body()])
        assert schema.decode_header(sock.recv()) == {"schema": "uplink/1", "type": "ack",
                                                     "seq": 1}
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
