"""Run benches with --json and keep each one's result, with where and when it ran, in
bench/results/NAME.json; `bench/summary.py` writes the README's results table from those files.

    .venv/bin/python bench/record.py                 # every run but the slow ones, in turn
    .venv/bin/python bench/record.py pipeline lfw    # these runs only
    .venv/bin/python bench/record.py --list          # what each name runs

A run's own output streams through as it comes; its last line must be one JSON object (the
benches' `--json` contract). A run that fails, or whose last line is not a JSON object, leaves
its earlier result file as it was and makes this command exit 1 after the other runs.
Run on a quiet box, one bench at a time: the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SHARED = "../shared"  # the project's data folder beside the checkout (runs start in ROOT)


@dataclass(frozen=True)
class Run:
    """One recorded measurement: the arguments after `python`, and whether `make bench` skips
    it (it takes too long for a routine run; record it by name)."""

    args: tuple[str, ...]
    slow: bool = False


def _faces(*args: str) -> tuple[str, ...]:
    return ("-m", "edge", "faces", *args)


_LFW = f"{SHARED}/lfw"
_LFW_IDS = f"{SHARED}/lfw/identities.csv"
RUNS: dict[str, Run] = {
    "vision": Run(("bench/vision.py",)),
    "thermal": Run(("bench/thermal.py",)),
    "gate": Run(("bench/gate.py",)),
    "store": Run(("bench/store.py",)),
    "telemetry": Run(("bench/telemetry.py",)),
    "telemetry_postgres": Run(("bench/telemetry.py", "--backend", "postgres")),
    "pipeline": Run(("bench/pipeline.py",)),
    "pad": Run(("bench/pad.py",)),
    "visible_pad": Run(("bench/visible_pad.py",)),
    "faces_eval": Run(_faces("eval", f"{SHARED}/faces", "--identities",
                             f"{SHARED}/faces/identities.csv")),
    "lfw": Run(_faces("lfw", _LFW)),
    "search": Run(_faces("search", _LFW, "--identities", _LFW_IDS)),
    "search_2": Run(_faces("search", _LFW, "--identities", _LFW_IDS, "--enrol-images", "2")),
    "rollups_year": Run(("bench/rollups.py", "--days", "365"), slow=True),
}


SIMD = (("AVX-512 VNNI", "avx512_vnni"), ("AVX-512", "avx512f"), ("AVX2", "avx2"),
        ("NEON", "asimd"), ("SSE4.2", "sse4_2"))


def machine() -> dict[str, object]:
    """The box a run measured: CPU model, cores, memory, Python and OS."""
    cpu, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
            if cpu and flags:
                break
    # the widest vector units onnxruntime, numpy and OpenCV can use: boxes of one model name
    # differ here, and the benches' figures with them
    simd = next((name for name, flag in SIMD if flag in flags), None)
    memory_gib = None
    with contextlib.suppress(ValueError, OSError):
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    return {"cpu": cpu, "simd": simd, "cores": os.cpu_count(), "memory_gib": memory_gib,
            "arch": platform.machine(), "python": platform.python_version(),
            "system": platform.system()}


def revision() -> str:
    """The commit measured, with `+changes` when the tree had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def last_json_object(lines: list[str]) -> dict[str, object] | None:
    """The run's result: its last non-empty line, when that is one JSON object."""
    for line in reversed(lines):
        if line.strip():
            try:
                value = json.loads(line)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def record(name: str, run: Run, results: Path = RESULTS) -> bool:
    """Run one measurement, streaming its output; keep its result. True when it was kept."""
    argv = [sys.executable, *run.args, "--json"]
    print(f"== {name}: python {' '.join(run.args)} --json", flush=True)
    load_start, started, t0 = os.getloadavg(), dt.datetime.now(dt.UTC), time.monotonic()
    lines: list[str] = []
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
    result = last_json_object(lines)
    if proc.returncode != 0 or result is None:
        why = f"exit status {proc.returncode}" if proc.returncode else "no JSON object last"
        print(f"== {name}: not recorded ({why}); {results / (name + '.json')} left as it was",
              file=sys.stderr)
        return False
    entry = {"name": name, "command": ["python", *run.args, "--json"],
             "measured_at": started.isoformat(timespec="seconds"),
             "seconds": round(time.monotonic() - t0, 1), "revision": revision(),
             "machine": machine(),
             "load_average": {"start": [round(x, 2) for x in load_start],
                              "end": [round(x, 2) for x in os.getloadavg()]},
             "result": result}
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps(entry, indent=1) + "\n")
    print(f"== {name}: recorded in {path} ({entry['seconds']} s)", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help="runs to record (default: every run not marked slow)")
    ap.add_argument("--list", action="store_true", help="the runs and what each runs")
    args = ap.parse_args(argv)
    if args.list:
        for name, run in RUNS.items():
            print(f"{name:20s} python {' '.join(run.args)} --json{'  (slow)' if run.slow else ''}")
        return 0
    unknown = [n for n in args.names if n not in RUNS]
    if unknown:
        ap.error(f"unknown run(s) {', '.join(unknown)}; --list shows them")
    names = args.names or [n for n, r in RUNS.items() if not r.slow]
    failed = [n for n in names if not record(n, RUNS[n])]
    if failed:
        print(f"not recorded: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
