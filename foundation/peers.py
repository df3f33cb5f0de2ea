"""Peers as real child processes on loopback: free ports, readiness waits, logs, stop, restart.

The one launcher every caller shares (the demo, the gate drills, the loopback bench, the tests
and the benches) for the project's other processes: the gate controller, the central collector
and the daemon. It knows them only by their command lines (`gate_controller_argv`,
`collector_argv`, `daemon_argv`), never by importing them, so every layer may use it.

- `free_port()` / `free_ports(n)` / `loopback_endpoint()`: ports nobody listens on now;
- `wait_for(cond, timeout_s, what, peers=...)`: poll until `cond()`, failing early (with the
  log's last lines) when a peer died;
- `Peer`: one child process; stdout and stderr go to its log file (appended); `start()` waits
  until it is ready (a callable and/or a line it prints); `stop()` is SIGTERM, then SIGKILL
  after the timeout; `kill()` is SIGKILL. A peer started with `restart=True` that dies by
  itself is started again, at most 5 times a minute (the appliance's restart budget);
- `Peers`: a group of peers sharing a log folder; a monitor thread restarts the dead ones that
  may be restarted (a dead gate controller comes back), and `stop()` ends them newest first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypedDict, Unpack

from foundation.clock import SystemClock
from foundation.errors import ConsentGateError
from foundation.restart_budget import RestartBudget

LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]  # the folder holding the project's packages
COLLECTOR_READY = "collector listening on"  # the collector's first stdout line
TAIL_LINES = 15


class PeerError(ConsentGateError):
    """A peer process did not start, died, or a wait for it timed out (its log is named)."""


# -- ports and waits -----------------------------------------------------------------------------
def free_ports(n: int, host: str = LOOPBACK) -> list[int]:
    """`n` distinct TCP ports free on `host` right now (all held open while picking)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


def loopback_endpoint(port: int | None = None) -> str:
    """A ZeroMQ tcp endpoint on loopback (a free port unless one is given)."""
    return f"tcp://{LOOPBACK}:{free_port() if port is None else port}"


def wait_for(cond: Callable[[], object], timeout_s: float = 20.0, what: str = "a condition",
             *, interval_s: float = 0.05, peers: Iterable[Peer] = ()) -> None:
    """Poll `cond` until it is true; PeerError after `timeout_s`, or as soon as one of `peers`
    died (and may not be restarted)."""
    watched = list(peers)
    end = time.monotonic() + timeout_s
    while True:
        if cond():
            return
        for peer in watched:
            peer.check()
        if time.monotonic() > end:
            raise PeerError(f"timed out after {timeout_s:g} s: {what}")
        time.sleep(interval_s)


# -- command lines -------------------------------------------------------------------------------
def python_module(module: str, *args: object) -> list[str]:
    """`python -m MODULE ARGS` with this interpreter."""
    return [sys.executable, "-m", module, *(str(a) for a in args)]


def gate_controller_argv(config: Path | str, command: str = "run") -> list[str]:
    """`python -m gate_controller run|simulate --config FILE` (the simulator without console)."""
    argv = python_module("gate_controller", command, "--config", config)
    return [*argv, "--no-console"] if command == "simulate" else argv


def collector_argv(keys: Path | str, db: Path | str, bind: str, *,
                   print_every_s: float = 5.0, log_level: str | None = None) -> list[str]:
    """`python -m central collect ...`; it prints COLLECTOR_READY once it listens."""
    argv = python_module("central", "collect", "--keys", keys, "--db", db, "--bind", bind,
                         "--print-every", f"{print_every_s:g}")
    return [*argv, "--log-level", log_level] if log_level else argv


def daemon_argv(config: Path | str, *, duration_s: float | None = None) -> list[str]:
    """`python -m edge run --config FILE [--duration S]`."""
    argv = python_module("edge", "run", "--config", config)
    return [*argv, "--duration", f"{duration_s:g}"] if duration_s is not None else argv


def _child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra or {}))
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) if not path else os.pathsep.join((str(ROOT), path))
    return env


# -- one peer ------------------------------------------------------------------------------------
class Peer:
    """One child process with its log file; see the module docstring."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *,
                 ready: Callable[[], object] | None = None, ready_line: str | None = None,
                 ready_timeout_s: float = 30.0, restart: bool = False,
                 env: dict[str, str] | None = None, cwd: Path | str | None = None,
                 new_session: bool = True, budget: RestartBudget | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.ready_timeout_s = ready_timeout_s
        self.restart = restart
        self.restarts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._ready = ready
        self._ready_line = ready_line
        self._env = env
        self._cwd = cwd
        self._new_session = new_session
        self._budget = budget or RestartBudget(SystemClock(), 5, 60.0)
        self._offset = 0
        self._stopping = False
        self._term_sent = False
        self._lock = threading.RLock()

    # -- starting ----------------------------------------------------------------------------
    def start(self, *, wait: bool = True) -> Peer:
        """Launch the process (again, after it ended) and, with `wait`, wait until ready."""
        with self._lock:
            if self.running:
                raise PeerError(f"the {self.name} process is already running")
            self._launch()
        if wait:
            self.wait_ready()
        return self

    def _launch(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self._offset = log.tell()
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self._cwd,
                                         env=_child_env(self._env),
                                         start_new_session=self._new_session)
        self._stopping = self._term_sent = False

    def is_ready(self) -> bool:
        if self._ready_line is not None and not any(
                line.startswith(self._ready_line) for line in self.lines()):
            return False
        return self._ready is None or bool(self._ready())

    def wait_ready(self, timeout_s: float | None = None) -> Peer:
        timeout = self.ready_timeout_s if timeout_s is None else timeout_s
        try:
            wait_for(self.is_ready, timeout, f"the {self.name} process did not get ready",
                     peers=[self])
        except PeerError as exc:
            if self.running:  # timed out: say where to look (a death says it already)
                raise PeerError(f"{exc}; see {self.log_path}{self._tail()}") from None
            raise
        return self

    # -- state and output ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise PeerError(f"the {self.name} process was never started")
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def poll(self) -> int | None:
        return self.returncode

    def output(self) -> str:
        """What the current process wrote to its log (stdout and stderr)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._offset)
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def lines(self) -> list[str]:
        return self.output().splitlines()

    def _tail(self) -> str:
        tail = self.lines()[-TAIL_LINES:]
        return ("; its last lines:\n  " + "\n  ".join(tail)) if tail else ""

    def check(self) -> None:
        """Raise PeerError if the process died by itself; restart it instead when allowed."""
        with self._lock:
            if self.proc is None or self._stopping or self.proc.poll() is None:
                return
            rc = self.proc.returncode
            if self.restart and self._budget.spend():
                self.restarts += 1
                self._note(f"peers: {self.name} exited ({rc}); restarting it "
                           f"(restart {self.restarts})")
                self._launch()
                return
            given_up = " and was restarted too often" if self.restart else ""
            raise PeerError(f"the {self.name} process exited ({rc}){given_up}; see "
                            f"{self.log_path}{self._tail()}")

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError), open(self.log_path, "a") as fh:
            fh.write(text + "\n")

    # -- stopping -----------------------------------------------------------------------------
    def send_signal(self, signum: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signum)

    def wait(self, timeout_s: float | None = None) -> int:
        if self.proc is None:
            raise PeerError(f"the {self.name} process was never started")
        return self.proc.wait(timeout_s)

    def terminate(self) -> None:
        """SIGTERM without waiting; the peer is not restarted."""
        with self._lock:
            self._stopping = True
            if not self._term_sent:
                self._term_sent = True
                self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL (its whole session) and reap it; the peer is not restarted."""
        with self._lock:
            self._stopping = True
            if self.running:
                self._kill_now()
            if self.proc is not None:
                self.proc.wait(10)

    def _kill_now(self) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self._new_session:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL; the exit status (None: never ran)."""
        if self.proc is None:
            return None
        self.terminate()
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self._kill_now()
            return self.proc.wait(10)

    def __enter__(self) -> Peer:
        return self if self.proc is not None else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# -- a group -------------------------------------------------------------------------------------
class PeerOptions(TypedDict, total=False):
    """The keyword options of `Peer`, as `Peers.start` passes them on."""

    ready: Callable[[], object] | None
    ready_line: str | None
    ready_timeout_s: float
    restart: bool
    env: dict[str, str] | None
    cwd: Path | str | None
    new_session: bool
    budget: RestartBudget | None


class Peers:
    """Peers sharing a log folder (`NAME.log`), watched by one monitor thread."""

    def __init__(self, log_dir: Path, *, cwd: Path | str | None = None,
                 monitor_interval_s: float = 0.2) -> None:
        self.log_dir = Path(log_dir)
        self._cwd = cwd
        self._peers: list[Peer] = []
        self._interval = monitor_interval_s
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self.failure: PeerError | None = None  # set when a restartable peer was given up on

    def start(self, name: str, argv: Sequence[str], **kwargs: Unpack[PeerOptions]) -> Peer:
        """Start one peer (see `Peer`) and wait until it is ready."""
        kwargs.setdefault("cwd", self._cwd)
        peer = Peer(name, argv, self.log_dir / f"{name}.log", **kwargs)
        self._peers.append(peer)
        peer.start()
        if peer.restart and self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, name="peers-monitor",
                                             daemon=True)
            self._monitor.start()
        return peer

    def __getitem__(self, name: str) -> Peer:
        for peer in self._peers:
            if peer.name == name:
                return peer
        raise KeyError(name)

    def __iter__(self) -> Iterator[Peer]:
        return iter(list(self._peers))

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            for peer in list(self._peers):
                if not peer.restart:
                    continue
                try:
                    peer.check()
                except PeerError as exc:
                    self.failure = exc

    def check(self) -> None:
        """PeerError if a peer died (or was restarted too often)."""
        if self.failure is not None:
            raise self.failure
        for peer in list(self._peers):
            peer.check()

    def wait_for(self, cond: Callable[[], object], timeout_s: float, what: str) -> None:
        """`wait_for` that fails early when one of these peers died."""
        if self.failure is not None:
            raise self.failure
        wait_for(cond, timeout_s, what, peers=self._peers)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the monitor, SIGTERM every peer (newest first), then wait; SIGKILL laggards."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(5)
        for peer in reversed(self._peers):
            peer.terminate()
        for peer in reversed(self._peers):
            peer.stop(timeout_s)

    def __enter__(self) -> Peers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
