"""Gate controller safety timings against the real process: heartbeat loss and fire alarm.

    .venv/bin/python bench/gate.py [--hb-trials 12] [--fire-trials 50] [--json]

Starts `python -m gate_controller simulate` on private ipc sockets, then
  * heartbeat loss: a stand-in daemon (`pinger`) is SIGKILLed; time until every lane's
    `manual` event arrives (requirement: < 2 s; floor: the 1.5 s heartbeat timeout);
  * fire alarm: the simulated fire input is raised through the simulator control socket; time
    until every lane's `emergency_open` event arrives (requirement: < 100 ms);
  * peer baseline, same run: a status command's round trip, the link's own latency floor.
Prints a table; with --json the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate_controller.drill import (
    ControllerProcess,
    fire_alarm_trial,
    heartbeat_loss_trial,
    status_round_trip,
    write_config,
)
from gate_controller.keys import create_gate_keys


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float], limit_ms: float | None) -> dict[str, object]:
    ms = [s * 1000 for s in seconds]
    return {"name": name, "n": len(ms), "p50_ms": round(pct(ms, 0.5), 2),
            "p95_ms": round(pct(ms, 0.95), 2), "max_ms": round(max(ms), 2),
            "mean_ms": round(statistics.fmean(ms), 2), "limit_ms": limit_ms,
            "pass": None if limit_ms is None else max(ms) < limit_ms}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hb-trials", type=int, default=12)
    parser.add_argument("--fire-trials", type=int, default=50)
    parser.add_argument("--rtt-trials", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    d = Path(tempfile.mkdtemp(prefix="gb", dir="/tmp"))
    cfg = write_config(d / "gate.toml", {
        "command_endpoint": f"ipc://{d}/s/cmd", "event_endpoint": f"ipc://{d}/s/ev",
        "sim_control_endpoint": f"ipc://{d}/s/sim", "lanes": ["A", "B"],
        **create_gate_keys(d / "keys")}, level="warning")
    ctl = ControllerProcess(cfg)
    try:
        rtt = [status_round_trip(ctl) for _ in range(args.rtt_trials)]
        fire = [fire_alarm_trial(ctl) for _ in range(args.fire_trials)]
        hb = [heartbeat_loss_trial(ctl) for _ in range(args.hb_trials)]
        timeout_ms = ctl.gate.heartbeat_timeout_s * 1000
    finally:
        rc = ctl.stop()
        shutil.rmtree(d, ignore_errors=True)
    rows = [summary("fire alarm -> all lanes emergency_open", fire, 100.0),
            summary("daemon SIGKILL -> all lanes manual", hb, 2000.0),
            summary("baseline: status command round trip", rtt, None)]
    machine = f"{platform.machine()}, {platform.python_implementation()} " \
              f"{platform.python_version()}, {platform.system()}"
    print(f"gate controller safety timings ({machine}; heartbeat timeout {timeout_ms:.0f} ms)")
    print(f"{'measure':<42} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'limit':>7}")
    for r in rows:
        limit = "-" if r["limit_ms"] is None else f"{r['limit_ms']:.0f}"
        print(f"{r['name']:<42} {r['n']:>4} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} "
              f"{r['max_ms']:>9.2f} {limit:>7}")
    print(f"heartbeat-loss floor (configured timeout): {timeout_ms:.0f} ms; "
          f"controller exit status on SIGTERM: {rc}")
    ok = all(r["pass"] is not False for r in rows) and rc == 0
    if args.json:
        print(json.dumps({"bench": "gate", "machine": machine, "rows": rows,
                          "heartbeat_timeout_ms": timeout_ms, "sigterm_rc": rc, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
