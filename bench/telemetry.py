"""Benchmark of the telemetry path to central (issue 6).

Runs the real collector process (`python -m central collect`: CurveZMQ + ZAP allow-list,
strict counts/1 validation, SQLite in batches, acks after commit) and drives it with simulated
devices speaking the device's wire protocol (uplink/2: epoch, seq, prev, cumulative acks, gap
rewind), each with its own Curve keypair, several hundred DEALER sockets per process. Scenarios:
- stream: a few devices pushing a backlog (windows per second through the collector);
- fan-in: 1000 devices connecting at once and sending their windows.
After each run the collector's SQLite file is checked: loss (expected (device, seq) missing),
duplicates (stored more than once) and order (each device's seqs 1..n). Both must be 0.
Peer baseline, same run, same client processes: a plain ZeroMQ ROUTER that acks every window
with no Curve, no validation and no storage (the ceiling of ZeroMQ + Python on this machine).
Target: >= 10k windows/s. Run: .venv/bin/python bench/telemetry.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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


def body(device: str, i: int) -> bytes:
    counts = dict.fromkeys(COUNT_FIELDS, 0) | {"people_detected": 20 + i % 7, "presented": 10,
                                               "matched": 5, "not_matched": 5, "faults": None}
    return json.dumps({"schema": "counts/1", "device": device, "gate": "BENCH",
                       "window_start": BASE_T + 300 * i, "window_s": 300, "k": 5,
                       "epsilon": None, "counts": counts}, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------- client workers

def client_worker(endpoint: str, server_key: bytes | None, devices: list[tuple[str, bytes, bytes]],
                  n_windows: int, ready, go, results) -> None:
    """Simulate `devices` (id, public, secret); each sends windows 1..n_windows in order."""
    ctx = zmq.Context()
    ctx.setsockopt(zmq.MAX_SOCKETS, len(devices) + 64)
    socks, state = [], {}
    for dev_id, public, secret in devices:
        s = ctx.socket(zmq.DEALER)
        if server_key is not None:
            s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server_key, public, secret
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 100_000)
        s.connect(endpoint)
        socks.append(s)
        state[s] = {"id": dev_id, "acked": 0, "next": 1, "prev": None, "gaps": 0,
                    "bodies": [body(dev_id, i) for i in range(n_windows + 1)]}
    headers = [b""] + [schema.window_header(EPOCH, i, i - 1 or None)
                       for i in range(1, n_windows + 1)]
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    # warm-up: every device completes its Curve handshake (and ZAP) and one heartbeat first
    t_connect = time.perf_counter()
    waiting = set(socks)
    for s in socks:
        s.send(schema.HEARTBEAT)
    deadline = time.monotonic() + 120
    while waiting and time.monotonic() < deadline:
        for s, _ in poller.poll(500):
            s.recv_multipart()
            waiting.discard(s)
    ready.put(time.perf_counter() - t_connect)
    go.wait()
    t0 = time.perf_counter()
    remaining = set(socks)
    rejects = resends = 0
    last_progress = time.monotonic()

    def pump(s):
        st = state[s]
        while st["next"] <= n_windows and st["next"] - st["acked"] <= IN_FLIGHT:
            seq = st["next"]
            prev = st["prev"]
            header = headers[seq] if prev == seq - 1 or (prev is None and seq == 1) else \
                schema.window_header(EPOCH, seq, prev)
            s.send_multipart([header, st["bodies"][seq]])
            st["prev"], st["next"] = seq, seq + 1

    for s in socks:
        pump(s)
    while remaining:
        events = poller.poll(500)
        if not events and time.monotonic() - last_progress > 5:
            for s in remaining:  # resend timer: rewind to the oldest unacked window
                st = state[s]
                st["next"], st["prev"] = st["acked"] + 1, None
                resends += 1
                pump(s)
            last_progress = time.monotonic()
        for s, _ in events:
            st = state[s]
            while True:
                try:
                    (frame,) = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                msg = json.loads(frame)
                if msg["type"] in ("ack", "gap"):
                    if msg["seq"] > st["acked"]:
                        st["acked"] = msg["seq"]
                        last_progress = time.monotonic()
                    if msg["type"] == "gap":
                        st["gaps"] += 1
                        st["next"], st["prev"] = st["acked"] + 1, None
                elif msg["type"] == "reject":
                    rejects += 1
            if st["acked"] >= n_windows:
                remaining.discard(s)
            else:
                pump(s)
    elapsed = time.perf_counter() - t0
    results.put({"elapsed": elapsed, "t_end": time.time(), "acked": sum(
        state[s]["acked"] for s in socks), "gaps": sum(state[s]["gaps"] for s in socks),
        "rejects": rejects, "resends": resends})
    for s in socks:
        s.close(linger=0)
    ctx.term()


def run_clients(endpoint: str, server_key: bytes | None, devices, n_windows: int,
                procs: int) -> dict:
    mpc = mp.get_context("fork")
    ready, go, results = mpc.Queue(), mpc.Event(), mpc.Queue()
    chunks = [devices[i::procs] for i in range(procs)]
    workers = [mpc.Process(target=client_worker,
                           args=(endpoint, server_key, c, n_windows, ready, go, results))
               for c in chunks if c]
    for w in workers:
        w.start()
    connect_s = max(ready.get(timeout=180) for _ in workers)
    t0 = time.time()
    go.set()
    outs = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join(30)
    wall = max(o["t_end"] for o in outs) - t0
    total = len(devices) * n_windows
    return {"windows": total, "seconds": wall, "windows_per_s": total / wall,
            "connect_s": connect_s,
            "acked": sum(o["acked"] for o in outs), "gaps": sum(o["gaps"] for o in outs),
            "rejects": sum(o["rejects"] for o in outs)}


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


class CollectorProc:
    """The real collector as a child process (foundation.peers), logging beside its db."""

    def __init__(self, keys: Path, db: Path) -> None:
        self.endpoint = loopback_endpoint()
        self.db = db
        self.peer = Peer("collector", collector_argv(keys, db, self.endpoint,
                                                     print_every_s=3600, log_level="error"),
                         db.with_suffix(".log"), ready_line=COLLECTOR_READY, cwd=ROOT)
        try:
            self.peer.start()
        except PeerError as exc:
            raise SystemExit(f"collector did not start: {exc}") from None

    def stop(self) -> str:
        self.peer.stop(30)
        return [ln for ln in self.peer.lines() if ln.startswith("totals")][-1]


def check_db(db: Path, devices: list[str], n_windows: int) -> dict:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT device, seq FROM windows").fetchall()
    expected = {(d, s) for d in devices for s in range(1, n_windows + 1)}
    stored = set(rows)
    return {"stored": len(rows), "loss": len(expected - stored),
            "duplicates": len(rows) - len(stored), "unexpected": len(stored - expected)}


# ---------------------------------------------------------------------------- main

def make_devices(keys_dir: Path, n: int, prefix: str) -> list[tuple[str, bytes, bytes]]:
    out = []
    for i in range(n):
        public, secret = zmq.curve_keypair()
        name = f"{prefix}-{i:05d}"
        (keys_dir / f"{name}.key").write_text(f'metadata\ncurve\n    public-key = "'
                                              f'{public.decode()}"\n')
        out.append((name, public, secret))
    return out


def scenario(tmp: Path, name: str, n_devices: int, n_windows: int, procs: int,
             baseline: bool) -> dict:
    keys = tmp / f"keys-{name}"
    create_keypair(keys, "central")
    devices = make_devices(keys, n_devices, f"sim{name}")
    server_key = load_public_key(keys / "central.key")
    collector = CollectorProc(keys, tmp / f"{name}.db")
    try:
        result = run_clients(collector.endpoint, server_key, devices, n_windows, procs)
    finally:
        totals = collector.stop()
    result |= check_db(collector.db, [d[0] for d in devices], n_windows)
    result["collector_totals"] = totals
    result["devices"] = n_devices
    if baseline:
        mpc = mp.get_context("fork")
        ready, stop = mpc.Event(), mpc.Event()
        endpoint = loopback_endpoint()
        server = mpc.Process(target=echo_server, args=(endpoint, ready, stop))
        server.start()
        ready.wait(10)
        base = run_clients(endpoint, None, devices, n_windows, procs)
        stop.set()
        server.join(10)
        result["baseline_windows_per_s"] = base["windows_per_s"]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stream-devices", type=int, default=10)
    ap.add_argument("--stream-windows", type=int, default=3000)
    ap.add_argument("--fanin-devices", type=int, default=1000)
    ap.add_argument("--fanin-windows", type=int, default=20)
    ap.add_argument("--procs", type=int, default=2, help="client processes (one per core)")
    ap.add_argument("--quick", action="store_true", help="smaller run (smoke test)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.stream_windows, args.fanin_devices, args.fanin_windows = 500, 200, 5
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        tmp_path = Path(tmp)
        stream = scenario(tmp_path, "stream", args.stream_devices, args.stream_windows,
                          min(args.procs, args.stream_devices), baseline=True)
        fanin = scenario(tmp_path, "fanin", args.fanin_devices, args.fanin_windows,
                         args.procs, baseline=True)
    print(f"telemetry bench on {platform.machine()} {platform.python_version()}, "
          f"client processes: {args.procs}")
    print(f"{'scenario':<10}{'devices':>8}{'connect s':>10}{'windows':>9}{'seconds':>9}"
          f"{'win/s':>9}{'baseline win/s':>16}{'loss':>6}{'dups':>6}{'gaps':>6}")
    for name, r in (("stream", stream), ("fan-in", fanin)):
        print(f"{name:<10}{r['devices']:>8}{r['connect_s']:>10.2f}{r['windows']:>9}"
              f"{r['seconds']:>9.2f}{r['windows_per_s']:>9.0f}"
              f"{r['baseline_windows_per_s']:>16.0f}"
              f"{r['loss']:>6}{r['duplicates']:>6}{r['gaps']:>6}")
    print("connect s = Curve handshake + ZAP allow-list check + one heartbeat for every device")
    print("baseline = plain ZeroMQ ROUTER acking each window (no Curve, no checks, no SQLite)")
    for name, r in (("stream", stream), ("fan-in", fanin)):
        print(f"{name} collector: {r['collector_totals'][:110]}")
    ok = all(r["loss"] == 0 and r["duplicates"] == 0 and r["unexpected"] == 0
             for r in (stream, fanin))
    if args.json:
        print(json.dumps({"stream": {k: v for k, v in stream.items() if k != "collector_totals"},
                          "fanin": {k: v for k, v in fanin.items() if k != "collector_totals"},
                          "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
