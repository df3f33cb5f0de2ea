"""Benchmark of the telemetry path to central (issues 6 and 18).

Runs the real collector process (`python -m central collect`: CurveZMQ + ZAP allow-list,
strict counts/1 validation, batched commits, acks after commit) and drives it with simulated
devices speaking the device's wire protocol (uplink/2: epoch, seq, prev, cumulative acks, gap
rewind; a device whose collector stays silent fails over to its next one), each with its own
Curve keypair, several hundred DEALER sockets per client process. Scenarios:
- stream: a few devices pushing a backlog (windows per second through the collector);
- fan-in: 1000 devices connecting at once and sending their windows;
- failover (postgres): 1000 devices split over two collectors on one database; one collector is
  SIGKILLed mid-run and its devices fail over to the other.
After each run the database is checked: loss (an expected (device, seq) missing), duplicates
(stored more than once), unexpected rows. All must be 0.

--backend sqlite (default): the embedded SQLite store; peer baseline in the same run with the
same clients: a plain ZeroMQ ROUTER that acks every window (no Curve, no validation, no storage).
--backend postgres: a throwaway PostgreSQL cluster (central.pg_cluster, durable commits: fsync
and synchronous_commit on); peer baselines in the same run: the SQLite collector with the same
clients, and the plain ROUTER. Then the roll-ups (central.rollups): a generated slice of
--rollup-gates gates x --rollup-days days of 5-minute windows, its full build, an incremental
refresh of one new hour and day and the table sizes (bench/rollups.py, which also runs alone,
for a whole year).
Target: >= 10k windows/s. Run: .venv/bin/python bench/telemetry.py [--backend postgres]
[--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import zmq
import zmq.auth

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollups import measure_rollups, print_rollup  # noqa: E402

from foundation.curve_keys import create_keypair, load_public_key  # noqa: E402
from foundation.peers import (  # noqa: E402
    COLLECTOR_READY,
    Peer,
    PeerError,
    collector_argv,
    loopback_endpoint,
)
from wire import telemetry as schema  # noqa: E402
from wire.telemetry import COUNT_FIELDS  # noqa: E402

IN_FLIGHT = 64
BASE_T = 1_800_000_000
EPOCH = 1  # every simulated device sends one epoch (epochs are per device)
SILENT_S = 6.0  # unanswered this long: fail over (the uplink: heartbeat_s 2 x liveness 3)


def body(device: str, i: int) -> bytes:
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"people_detected": 20 + i % 7, "presented": 10,
                                               "matched": 5, "not_matched": 5, "faults": None}
    return json.dumps({"schema": "counts/1", "device": device, "gate": "BENCH",
                       "window_start": BASE_T + 300 * i, "window_s": 300, "k": 5,
                       "epsilon": None, "counts": counts}, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- client workers

def client_worker(endpoints: list[str], server_key: bytes | None,
                  devices: list[tuple[int, str, bytes, bytes]], n_windows: int, ready, go,
                  results) -> None:
    """Simulate `devices` (index, id, public, secret); each sends windows 1..n_windows in order
    to endpoints[index % len(endpoints)], failing over to the next one when it stays silent."""
    ctx = zmq.Context()
    ctx.setsockopt(zmq.MAX_SOCKETS, 2 * len(devices) + 64)
    poller = zmq.Poller()
    state: dict[int, dict] = {}  # device index -> its state
    by_sock: dict[zmq.Socket, dict] = {}

    def connect(st: dict) -> None:
        if st.get("sock") is not None:
            poller.unregister(st["sock"])
            by_sock.pop(st["sock"])
            st["sock"].close(linger=0)
        s = ctx.socket(zmq.DEALER)
        if server_key is not None:
            s.curve_serverkey, s.curve_publickey, s.curve_secretkey = (server_key, st["public"],
                                                                      st["secret"])
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 100_000)
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.connect(endpoints[st["at"] % len(endpoints)])
        st.update(sock=s, next=st["acked"] + 1, prev=None, last=time.monotonic())
        poller.register(s, zmq.POLLIN)
        by_sock[s] = st

    for index, dev_id, public, secret in devices:
        st = {"id": dev_id, "public": public, "secret": secret, "acked": 0, "gaps": 0,
              "at": index, "key": index, "switches": 0,
              "bodies": [body(dev_id, i) for i in range(n_windows + 1)]}
        state[index] = st
        connect(st)
    headers = [b""] + [schema.window_header(EPOCH, i, i - 1 or None)
                       for i in range(1, n_windows + 1)]
    # warm-up: every device completes its Curve handshake (and ZAP) and one heartbeat first
    t_connect = time.perf_counter()
    waiting = set(by_sock)
    for s in by_sock:
        s.send(schema.HEARTBEAT)
    deadline = time.monotonic() + 120
    while waiting and time.monotonic() < deadline:
        for s, _ in poller.poll(500):
            s.recv_multipart()
            waiting.discard(s)
    ready.put(time.perf_counter() - t_connect)
    go.wait()
    t0 = time.perf_counter()
    remaining = set(state)
    rejects = 0
    stalled: set[int] = set()

    def pump(st: dict) -> None:
        s = st["sock"]
        while st["next"] <= n_windows and st["next"] - st["acked"] <= IN_FLIGHT:
            seq, prev = st["next"], st["prev"]
            header = headers[seq] if prev == seq - 1 or (prev is None and seq == 1) else \
                schema.window_header(EPOCH, seq, prev)
            try:
                s.send_multipart([header, st["bodies"][seq]], zmq.NOBLOCK)
            except zmq.Again:  # not connected (yet): try again next loop
                stalled.add(st["key"])
                return
            st["prev"], st["next"] = seq, seq + 1

    for st in state.values():
        pump(st)
    next_check = time.monotonic() + 0.25
    while remaining:
        for index in list(stalled):
            stalled.discard(index)
            pump(state[index])
        for s, _ in poller.poll(100):
            st = by_sock[s]
            while True:
                try:
                    (frame,) = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                st["last"] = time.monotonic()
                msg = json.loads(frame)
                if msg["type"] in ("ack", "gap"):
                    st["acked"] = max(st["acked"], msg["seq"])
                    if msg["type"] == "gap":
                        st["gaps"] += 1
                        st["next"], st["prev"] = st["acked"] + 1, None
                elif msg["type"] == "reject":
                    rejects += 1
            if st["acked"] >= n_windows:
                remaining.discard(st["key"])
            else:
                pump(st)
        now = time.monotonic()
        if now >= next_check:  # silent collectors: fail over to the next endpoint
            next_check = now + 0.25
            for index in remaining:
                st = state[index]
                if now - st["last"] > SILENT_S:
                    st["at"] += 1
                    st["switches"] += 1
                    connect(st)
                    pump(st)
    elapsed = time.perf_counter() - t0
    results.put({"elapsed": elapsed, "t_end": time.time(),
                 "acked": sum(st["acked"] for st in state.values()),
                 "gaps": sum(st["gaps"] for st in state.values()), "rejects": rejects,
                 "switches": sum(st["switches"] for st in state.values())})
    for s in list(by_sock):
        s.close(linger=0)
    ctx.term()


def run_clients(endpoints: list[str], server_key: bytes | None, devices, n_windows: int,
                procs: int, during=None) -> dict:
    """Run the simulated devices; `during()` is called about every 50 ms while they run."""
    mpc = mp.get_context("fork")
    ready, go, results = mpc.Queue(), mpc.Event(), mpc.Queue()
    indexed = [(i, *d) for i, d in enumerate(devices)]
    chunks = [indexed[i::procs] for i in range(procs)]
    workers = [mpc.Process(target=client_worker,
                           args=(endpoints, server_key, c, n_windows, ready, go, results))
               for c in chunks if c]
    for w in workers:
        w.start()
    connect_s = max(ready.get(timeout=180) for _ in workers)
    t0 = time.time()
    go.set()
    outs: list[dict] = []
    deadline = time.monotonic() + 900
    while len(outs) < len(workers):
        if time.monotonic() > deadline:
            raise SystemExit("the simulated devices did not finish in 900 s")
        try:
            outs.append(results.get(timeout=0.05))
        except Exception:  # queue.Empty
            if during is not None:
                during()
    for w in workers:
        w.join(30)
    wall = max(o["t_end"] for o in outs) - t0
    total = len(devices) * n_windows
    return {"windows": total, "seconds": wall, "windows_per_s": total / wall,
            "connect_s": connect_s, **{k: sum(o[k] for o in outs)
                                       for k in ("acked", "gaps", "rejects", "switches")}}


# ---------------------------------------------------------------------------- servers

def echo_server(endpoint: str, ready, stop) -> None:
    """Baseline peer: plain ROUTER, acks each window at once; no Curve, checks or storage."""
    ctx = zmq.Context()
    s = ctx.socket(zmq.ROUTER)
    s.setsockopt(zmq.RCVHWM, 200_000)
    s.setsockopt(zmq.SNDHWM, 200_000)
    s.bind(endpoint)
    ready.set()
    while not stop.is_set():
        if s.poll(100):
            while True:
                try:
                    ident, header, *rest = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                s.send_multipart([ident, schema.ack(EPOCH, json.loads(header)["seq"]) if rest
                                  else schema.HEARTBEAT])
    s.close(linger=0)
    ctx.term()


def echo_baseline(devices, n_windows: int, procs: int) -> float:
    mpc = mp.get_context("fork")
    ready, stop = mpc.Event(), mpc.Event()
    endpoint = loopback_endpoint()
    server = mpc.Process(target=echo_server, args=(endpoint, ready, stop))
    server.start()
    ready.wait(10)
    base = run_clients([endpoint], None, devices, n_windows, procs)
    stop.set()
    server.join(10)
    return base["windows_per_s"]


class CollectorProc:
    """The real collector as a child process (foundation.peers), logging to `log`."""

    def __init__(self, keys: Path, db: Path | str, log: Path) -> None:
        self.endpoint = loopback_endpoint()
        self.db = db
        self.peer = Peer("collector", collector_argv(keys, db, self.endpoint,
                                                     print_every_s=3600, log_level="error"),
                         log, ready_line=COLLECTOR_READY, cwd=ROOT)
        try:
            self.peer.start()
        except PeerError as exc:
            raise SystemExit(f"collector did not start: {exc}") from None

    def stop(self) -> str:
        self.peer.stop(30)
        totals = [ln for ln in self.peer.lines() if ln.startswith("totals")]
        return totals[-1] if totals else "(killed: no totals)"


def stored_rows(db: Path | str) -> list[tuple[str, int]]:
    if isinstance(db, Path):
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT device, seq FROM windows").fetchall()
    import psycopg

    with psycopg.connect(db) as conn:
        return conn.execute("SELECT device, seq FROM windows").fetchall()


def check_db(db: Path | str, devices: list[str], n_windows: int) -> dict:
    rows = stored_rows(db)
    expected = {(d, s) for d in devices for s in range(1, n_windows + 1)}
    stored = set(rows)
    return {"stored": len(rows), "loss": len(expected - stored),
            "duplicates": len(rows) - len(stored), "unexpected": len(stored - expected)}


# ---------------------------------------------------------------------------- scenarios

def make_devices(keys_dir: Path, n: int, prefix: str) -> list[tuple[str, bytes, bytes]]:
    out = []
    for i in range(n):
        public, secret = zmq.curve_keypair()
        name = f"{prefix}-{i:05d}"
        (keys_dir / f"{name}.key").write_text(f'metadata\ncurve\n    public-key = "'
                                              f'{public.decode()}"\n')
        out.append((name, public, secret))
    return out


def scenario(tmp: Path, name: str, n_devices: int, n_windows: int, procs: int, db_of,
             *, collectors: int = 1, kill_at: float | None = None,
             baseline: bool = False) -> dict:
    """`collectors` collector processes on the database `db_of(name)` gives; with `kill_at`,
    the first is SIGKILLed once that fraction of the windows is stored."""
    keys = tmp / f"keys-{name}"
    create_keypair(keys, "central")
    devices = make_devices(keys, n_devices, f"sim{name}")
    server_key = load_public_key(keys / "central.key")
    db = db_of(name)
    procs_ = [CollectorProc(keys, db, tmp / f"{name}-{i}.log") for i in range(collectors)]
    total = n_devices * n_windows
    killed: dict = {}
    next_look = [0.0]

    def during() -> None:
        if kill_at is None or killed or time.monotonic() < next_look[0]:
            return
        next_look[0] = time.monotonic() + 0.05
        if len(stored_rows(db)) >= kill_at * total:
            procs_[0].peer.kill()
            killed["at_windows"] = len(stored_rows(db))

    try:
        result = run_clients([p.endpoint for p in procs_], server_key, devices, n_windows,
                             procs, during)
    finally:
        totals = [p.stop() for p in procs_]
    result |= check_db(db, [d[0] for d in devices], n_windows)
    result |= {"collector_totals": totals, "devices": n_devices, "collectors": collectors}
    if kill_at is not None:
        result["killed_at_windows"] = killed.get("at_windows")
    if baseline:
        result["baseline_windows_per_s"] = echo_baseline(devices, n_windows, procs)
    return result


def print_table(rows: list[tuple[str, dict]]) -> None:
    print(f"{'scenario':<18}{'devices':>8}{'connect s':>10}{'windows':>9}{'seconds':>9}"
          f"{'win/s':>9}{'loss':>6}{'dups':>6}{'gaps':>7}{'switch':>7}")
    for name, r in rows:
        print(f"{name:<18}{r['devices']:>8}{r['connect_s']:>10.2f}{r['windows']:>9}"
              f"{r['seconds']:>9.2f}{r['windows_per_s']:>9.0f}{r['loss']:>6}"
              f"{r['duplicates']:>6}{r['gaps']:>7}{r['switches']:>7}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--stream-devices", type=int, default=10)
    ap.add_argument("--stream-windows", type=int, default=3000)
    ap.add_argument("--fanin-devices", type=int, default=1000)
    ap.add_argument("--fanin-windows", type=int, default=None,
                    help="windows per fan-in device (default 20; postgres 60, sustained)")
    ap.add_argument("--rollup-gates", type=int, default=1000)
    ap.add_argument("--rollup-days", type=int, default=7)
    ap.add_argument("--procs", type=int, default=2, help="client processes (one per core)")
    ap.add_argument("--quick", action="store_true", help="smaller run (smoke test)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.fanin_windows is None:
        args.fanin_windows = 60 if args.backend == "postgres" else 20
    if args.quick:
        args.stream_windows, args.fanin_devices, args.fanin_windows = 500, 200, 5
        args.rollup_gates, args.rollup_days = 100, 2
    if args.backend == "postgres":
        return main_postgres(args)
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        tmp_path = Path(tmp)

        def sqlite_db(name: str) -> Path:
            return tmp_path / f"{name}.db"

        stream = scenario(tmp_path, "stream", args.stream_devices, args.stream_windows,
                          min(args.procs, args.stream_devices), sqlite_db, baseline=True)
        fanin = scenario(tmp_path, "fanin", args.fanin_devices, args.fanin_windows,
                         args.procs, sqlite_db, baseline=True)
    print(f"telemetry bench (sqlite) on {platform.machine()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, client processes: {args.procs}")
    print_table([("stream", stream), ("fan-in", fanin)])
    print(f"baseline win/s (plain ZeroMQ ROUTER acking each window, no Curve, no checks, no "
          f"store): stream {stream['baseline_windows_per_s']:.0f}, "
          f"fan-in {fanin['baseline_windows_per_s']:.0f}")
    print("connect s = Curve handshake + ZAP allow-list check + one heartbeat for every device")
    for name, r in (("stream", stream), ("fan-in", fanin)):
        print(f"{name} collector: {r['collector_totals'][0][:110]}")
    ok = all(r["loss"] == 0 and r["duplicates"] == 0 and r["unexpected"] == 0
             for r in (stream, fanin))
    if args.json:
        print(json.dumps({"backend": "sqlite", "stream": _plain(stream),
                          "fanin": _plain(fanin), "ok": ok}))
    return 0 if ok else 1


def _plain(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "collector_totals"}


def main_postgres(args: argparse.Namespace) -> int:
    from central.pg_cluster import PgCluster

    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp, PgCluster() as pg:
        tmp_path = Path(tmp)

        def pg_db(name: str) -> str:
            return pg.create_database(name)

        def sqlite_db(name: str) -> Path:
            return tmp_path / f"{name}.db"

        fd, fw, procs = args.fanin_devices, args.fanin_windows, args.procs
        stream = scenario(tmp_path, "stream", args.stream_devices, args.stream_windows,
                          min(procs, args.stream_devices), pg_db)
        fanin = scenario(tmp_path, "fanin", fd, fw, procs, pg_db, baseline=True)
        two = scenario(tmp_path, "two", fd, fw, procs, pg_db, collectors=2)
        failover = scenario(tmp_path, "failover", fd, max(fw, 30), procs, pg_db,
                            collectors=2, kill_at=0.3)
        peer = scenario(tmp_path, "sqlitepeer", fd, fw, procs, sqlite_db)
        rollup = measure_rollups(pg.create_database("rollup"), args.rollup_gates,
                                 args.rollup_days)
    runs = [("stream", stream), ("fan-in", fanin), ("fan-in 2 coll.", two),
            ("failover (kill 1)", failover), ("sqlite peer", peer)]
    print(f"telemetry bench (postgres) on {platform.machine()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, client processes: "
          f"{procs}; PostgreSQL {rollup['server_version']} (fsync on, synchronous_commit on)")
    print_table(runs)
    print(f"peer baselines, same run, same clients: SQLite collector "
          f"{peer['windows_per_s']:.0f} win/s; plain ZeroMQ ROUTER acking each window "
          f"{fanin['baseline_windows_per_s']:.0f} win/s")
    print(f"failover: collector 1 of 2 SIGKILLed at {failover['killed_at_windows']} stored "
          f"windows; {failover['switches']} device reconnects to the other")
    print_rollup(rollup)
    ok = all(r["loss"] == 0 and r["duplicates"] == 0 and r["unexpected"] == 0
             for _, r in runs) and failover["killed_at_windows"] is not None
    if args.json:
        print(json.dumps({"backend": "postgres", "stream": _plain(stream),
                          "fanin": _plain(fanin), "fanin_two_collectors": _plain(two),
                          "failover": _plain(failover), "sqlite_peer": _plain(peer),
                          "rollup": rollup, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
