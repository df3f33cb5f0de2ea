"""Running `python -m edge demo` as a user does, for the demo-day tests (not a test module)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_demo(workdir: Path, *args: str, timeout_s: float = 300) -> dict:
    """One `python -m edge demo --workdir DIR --json [args]` run: its exit code, the JSON summary
    (the last line of stdout), the workdir and both streams."""
    proc = subprocess.run([sys.executable, "-m", "edge", "demo", *args, "--workdir", str(workdir),
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    return {"rc": proc.returncode, "summary": json.loads(lines[-1]), "workdir": workdir,
            "stdout": proc.stdout, "stderr": proc.stderr}
