"""Central on PostgreSQL for tests: collector processes sharing one database, and simulated
devices (raw DEALERs speaking uplink/2, each with its own Curve key) that fail over between
collectors when the one they talk to stays silent.

The throwaway cluster itself is central.pg_cluster (shared with the bench and `make`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import zmq

from foundation.curve_keys import create_keypair
from foundation.peers import COLLECTOR_READY, Peer, collector_argv, free_port
from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000


def body(device: str, seq: int, gate: str = "G1") -> bytes:
    """A valid counts/1 body for window `seq` of `device` (matched = 10 + seq, recognisable)."""
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"matched": 10 + seq, "presented": 20 + seq,
                                               "faults": None}
    return json.dumps({"schema": "counts/1", "device": device, "gate": gate,
                       "window_start": T0 + 300 * seq, "window_s": 300, "k": 5,
                       "epsilon": None, "counts": counts}).encode()


class PgCollector:
    """`python -m central collect --db postgresql://...` on its own port, logging to `log`."""

    def __init__(self, keys: Path, dsn: str, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.peer = Peer("collector", collector_argv(keys, dsn, self.endpoint,
                                                     print_every_s=0.2), log,
                         ready_line=COLLECTOR_READY, cwd=ROOT)

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> PgCollector:
        self.peer.start()
        return self

    def lines(self) -> list[str]:
        return self.peer.lines()

    def stored(self) -> int:
        """windows= of this run's last totals line (what this process stored)."""
        totals = [ln for ln in self.lines() if ln.startswith("totals ")]
        return int(totals[-1].split()[1].split("=")[1]) if totals else 0


def windows(dsn: str) -> list[tuple[str, int, int, int]]:
    """(device, epoch, seq, matched) of every stored window, by device then seq."""
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT device, epoch, seq, matched FROM windows "
                            "ORDER BY device, epoch, seq").fetchall()


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM windows").fetchone()
        return int(row[0]) if row else 0


def admit(keys: Path, n: int, prefix: str = "sim") -> list[tuple[str, bytes, bytes]]:
    """n device keypairs whose public keys central admits: (device id, public, secret)."""
    out = []
    for i in range(n):
        public, secret = zmq.curve_keypair()
        name = f"{prefix}-{i:04d}"
        (keys / f"{name}.key").write_text(
            f'metadata\ncurve\n    public-key = "{public.decode()}"\n')
        out.append((name, public, secret))
    return out


def central_keys(folder: Path) -> Path:
    create_keypair(folder, "central")
    return folder


class SimDevice:
    """One device: windows 1..n of one epoch, up to `in_flight` ahead of the acks; when its
    collector is silent for `silent_s` with windows unacked, it reconnects to the next
    endpoint and restarts its stream at the oldest unacked window (prev null)."""

    def __init__(self, ctx: zmq.Context, ident: tuple[str, bytes, bytes], server_key: bytes,
                 endpoints: list[str], n: int, *, epoch: int = 1, in_flight: int = 16,
                 silent_s: float = 1.0) -> None:
        self.ctx, self.name, self.public, self.secret = ctx, *ident
        self.server_key, self.endpoints, self.n, self.epoch = server_key, endpoints, n, epoch
        self.in_flight, self.silent_s = in_flight, silent_s
        self.index = 0
        self.acked = 0
        self.switches = 0
        self.sock: zmq.Socket | None = None
        self._connect()

    def _connect(self) -> None:
        if self.sock is not None:
            self.sock.close(linger=0)
        s = self.ctx.socket(zmq.DEALER)
        s.curve_serverkey, s.curve_publickey, s.curve_secretkey = (
            self.server_key, self.public, self.secret)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.connect(self.endpoints[self.index])
        self.sock = s
        self.next, self.prev = self.acked + 1, None
        self.last_reply = time.monotonic()

    @property
    def done(self) -> bool:
        return self.acked >= self.n

    def pump(self) -> None:
        assert self.sock is not None
        while self.next <= self.n and self.next - self.acked <= self.in_flight:
            try:
                self.sock.send_multipart([schema.window_header(self.epoch, self.next, self.prev),
                                          body(self.name, self.next)], zmq.NOBLOCK)
            except zmq.Again:
                return
            self.prev, self.next = self.next, self.next + 1

    def read(self) -> None:
        assert self.sock is not None
        while True:
            try:
                (frame,) = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.last_reply = time.monotonic()
            msg = schema.decode_header(frame)
            if msg["type"] in ("ack", "gap") and msg["epoch"] == self.epoch:
                self.acked = max(self.acked, msg["seq"])
            if msg["type"] == "gap":
                self.next, self.prev = self.acked + 1, None
            assert msg["type"] != "reject", msg

    def check(self) -> None:
        if not self.done and time.monotonic() - self.last_reply > self.silent_s:
            self.index = (self.index + 1) % len(self.endpoints)
            self.switches += 1
            self._connect()


def drive(devices: list[SimDevice], timeout_s: float, during=None) -> None:
    """Run the devices until all are acked; `during()` is called every loop (a kill...)."""
    poller = zmq.Poller()
    end = time.monotonic() + timeout_s
    while not all(d.done for d in devices):
        assert time.monotonic() < end, f"not all acked: {[d.acked for d in devices]}"
        if during is not None:
            during()
        poller = zmq.Poller()
        for d in devices:
            assert d.sock is not None
            poller.register(d.sock, zmq.POLLIN)
            d.pump()
        poller.poll(50)
        for d in devices:
            d.read()
            d.check()
    for d in devices:
        if d.sock is not None:
            d.sock.close(linger=0)

