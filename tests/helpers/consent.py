"""Test helper: a child process that holds a consent store open (like a running daemon)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

_HOLDER = r"""
import sys
from pathlib import Path
from foundation.clock import SystemClock
from edge.consent.store import ConsentStore
store = ConsentStore.open(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), SystemClock())
print("ready", flush=True)
sys.stdin.readline()          # parent says: close
store.close()
print("closed", flush=True)
sys.stdin.readline()          # parent says: exit
"""


class StoreHolder:
    """`with StoreHolder(store, key, secret) as h:` a child process has the store open."""

    def __init__(self, store: Path, key_file: Path, secret_file: Path) -> None:
        self.args = [str(store), str(key_file), str(secret_file)]
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> StoreHolder:
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(root)}
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER, *self.args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env, cwd=root)
        assert self._read_until("ready"), \
            f"the holder did not open the store (rc={self.proc.poll()})"
        return self

    def _read_until(self, word: str) -> bool:
        """Skip the child's log lines (structlog writes to stdout) up to `word`."""
        assert self.proc is not None and self.proc.stdout is not None
        return any(line.strip() == word for line in self.proc.stdout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def close_store(self) -> None:
        """The child closes its store but stays alive."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self._read_until("closed")

    def kill(self) -> None:
        """SIGKILL: no close(), no atexit; only the kernel releases what it held."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
