"""The telemetry link on loopback for tests: the real collector process, stores, uplinks and a
raw device socket (an admitted device that sends whatever a test wants).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import zmq

from edge.consent.keys import write_key_file
from edge.consent.store import ConsentStore
from edge.telemetry.counters import COUNT_FIELDS, WindowCounters
from edge.telemetry.uplink import Uplink
from foundation.clock import FakeClock
from foundation.curve_keys import create_keypair, load_keypair, load_public_key
from foundation.peers import COLLECTOR_READY, Peer, collector_argv, free_port
from foundation.settings import Settings
from wire import telemetry as schema

ROOT = Path(__file__).resolve().parents[2]
WINDOW_S = 60
DEVICE = "cg-00000007"
T0 = 1_800_000_000


class SplitClock:
    """Wall time under the test's control (windows), real monotonic time (heartbeats)."""

    def __init__(self) -> None:
        self.wall = FakeClock(start=float(T0))

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

    def _query(self, sql: str) -> list[tuple]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as db:
            return db.execute(sql).fetchall()

    def rows(self) -> list[tuple]:
        return self._query("SELECT device, seq, window_start, received_at, matched "
                           "FROM windows ORDER BY device, seq")

    def epoch_rows(self) -> list[tuple]:
        """(epoch, seq, matched) of every stored window, in the order they were received."""
        return self._query("SELECT epoch, seq, matched FROM windows ORDER BY received_at, seq")

    def vm_rss_kib(self) -> int:
        """The collector's resident memory now (VmRSS of /proc/PID/status), in KiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS line")


def admit_device(central: Path, device: Path) -> Path:
    """Central's keypair in `central`, the device's in `device`, and the device's public key in
    central's allow-list (as gate7.key); returns `central`."""
    create_keypair(central, "central")
    create_keypair(device, "device")
    shutil.copy(device / "device.key", central / "gate7.key")
    return central


class Net:
    """Central keys (the allow-list holds the device key), device keys, collectors on one port."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.central_keys = admit_device(tmp_path / "central", tmp_path / "device" / "keys")
        self.device_keys = tmp_path / "device" / "keys"
        self.port = free_port()
        self.procs: list[CollectorProc] = []

    def collector(self) -> CollectorProc:
        c = CollectorProc(self.central_keys, self.tmp_path / "central.db", self.port,
                          self.tmp_path / "collector.log")
        self.procs.append(c)
        return c

    def close(self) -> None:
        for c in self.procs:
            c.stop()


def make_settings(tmp_path: Path, port: int, **telemetry: Any) -> Settings:
    return Settings.model_validate({
        "device": {"device_id": DEVICE, "gate_id": "GATE-7", "data_dir": str(tmp_path)},
        "telemetry": {"central_endpoint": f"tcp://127.0.0.1:{port}", "window_s": WINDOW_S,
                      "k_anonymity": 5, "heartbeat_s": 0.2, "heartbeat_liveness": 3,
                      "resend_initial_s": 0.2, "resend_max_s": 1.0, "max_in_flight": 8}
                     | telemetry,
    })


def open_store(tmp_path: Path, clock: Any, create: bool) -> ConsentStore:
    keys = tmp_path / "device" / "keys"
    if create:
        write_key_file(keys / "store.key")
        write_key_file(keys / "ref.key")
    return ConsentStore.open(tmp_path / "device" / "store.db", keys / "store.key",
                             keys / "ref.key", clock, create=create)


def make_uplink(settings: Settings, counters: WindowCounters, outbox: Any, clock: Any,
                keys_dir: Path, central_keys: Path) -> Uplink:
    return Uplink(settings, counters, outbox, clock, load_keypair(keys_dir / "device.key_secret"),
                  load_public_key(central_keys / "central.key"))


def started_uplink(tmp_path: Path, net: Net, clock: Any, settings: Settings | None = None, *,
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


def raw_device(ctx: zmq.Context, net: Net, endpoint: str, *, timeout_ms: int = 5000
               ) -> zmq.Socket:
    """A DEALER with the admitted device's key: it sends whatever the test gives it."""
    public, secret = load_keypair(net.device_keys / "device.key_secret")
    sock = ctx.socket(zmq.DEALER)
    sock.curve_serverkey = load_public_key(net.central_keys / "central.key")
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.connect(endpoint)
    return sock


def body(matched: int, start: int = T0, extra: dict | None = None,
         counts: dict | None = None) -> bytes:
    """A valid counts/1 body (matched as given), with `extra` fields laid over it."""
    msg: dict[str, Any] = {
        "schema": "counts/1", "device": DEVICE, "gate": "GATE-7", "window_start": start,
        "window_s": 60, "k": 5, "epsilon": None,
        "counts": dict.fromkeys(COUNT_FIELDS, 0) | {"matched": matched} | (counts or {})}
    msg.update(extra or {})
    return json.dumps(msg).encode()


def reply(sock: zmq.Socket) -> dict:
    (frame,) = sock.recv_multipart()
    return schema.decode_header(frame)
