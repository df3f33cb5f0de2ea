"""A throwaway PostgreSQL cluster for tests, benches and `make`: initdb + pg_ctl in a temporary
folder, no system service, no TCP (only a unix socket in that folder, named by a free port).

PostgreSQL refuses to run as root, so when this process is root the cluster is initialised and
run as a non-root OS user (`postgres` when Debian's package made it, else `nobody`) through
`runuser`; the folder is that user's, mode 0700, so only that user and root can connect. The
server binaries are found by `pg_config --bindir`, then /usr/lib/postgresql/*/bin (Debian's
layout), then PATH. Install them on Debian with `apt-get install -y postgresql` (`make
postgres`).

    with PgCluster() as pg:            # or pg = PgCluster().start(); ...; pg.stop()
        dsn = pg.create_database("windows")   # postgresql://...?host=/tmp/...&port=...

`python -m central.pg_cluster` starts one, prints its DSN and waits for Ctrl-C (a manual check).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from central.errors import CollectorError
from foundation.peers import free_port

SUPERUSER = "consentgate"
INSTALL_HINT = "install PostgreSQL's server (Debian: apt-get install -y postgresql; make postgres)"
# fast and small for throwaway use; durable commits stay on unless fsync=False is asked for
_SERVER_OPTIONS = ("-c listen_addresses='' -c max_connections=60 -c shared_buffers=128MB "
                   "-c max_wal_size=2GB -c checkpoint_timeout=15min -c log_min_messages=warning")


class PgUnavailable(CollectorError):
    """PostgreSQL's server binaries are missing or the cluster cannot start."""


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None when none is installed."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        if out and (Path(out) / "initdb").is_file():
            return Path(out)

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path)) or (0,)

    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version,
                        reverse=True):
        return Path(found).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _run_as_user() -> str | None:
    """The non-root OS user to run the server as, or None when this process is not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PgUnavailable("running as root and no non-root user (postgres or nobody) to run "
                        "PostgreSQL as: create one (useradd -r postgres)")


class PgCluster:
    """One throwaway cluster; see the module docstring."""

    def __init__(self, *, fsync: bool = True, base_dir: Path | None = None) -> None:
        self.bindir = find_bindir()
        self.fsync = fsync
        self._base_dir = base_dir
        self.folder: Path | None = None
        self.port = 0
        self.user = _run_as_user()
        self._running = False

    @property
    def socket_dir(self) -> Path:
        assert self.folder is not None
        return self.folder

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URI for `database` over the cluster's unix socket."""
        if self.folder is None:
            raise PgUnavailable("the cluster is not started")
        return (f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"
                f"&port={self.port}")

    def _cmd(self, tool: str, *args: str) -> list[str]:
        assert self.bindir is not None
        argv = [str(self.bindir / tool), *args]
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    def _call(self, tool: str, *args: str, timeout: float = 120) -> None:
        try:
            done = subprocess.run(self._cmd(tool, *args), capture_output=True, text=True,
                                  timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            raise PgUnavailable(f"{tool} did not run ({exc})") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise PgUnavailable(f"{tool} failed ({done.returncode}): {' | '.join(tail)}")

    def start(self) -> PgCluster:
        if self.bindir is None:
            raise PgUnavailable(f"no PostgreSQL server binaries (initdb) found: {INSTALL_HINT}")
        self.folder = Path(tempfile.mkdtemp(prefix="consentgate-pg-", dir=self._base_dir))
        data = self.folder / "data"
        if self.user:
            info = pwd.getpwnam(self.user)
            os.chown(self.folder, info.pw_uid, info.pw_gid)
        os.chmod(self.folder, 0o700)
        try:
            self._call("initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                       "-E", "UTF8", "--locale=C", "--no-instructions")
            self.port = free_port()
            options = f"{_SERVER_OPTIONS} -k {self.folder} -p {self.port}"
            if not self.fsync:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            self._call("pg_ctl", "-D", str(data), "-l", str(self.folder / "server.log"),
                       "-o", options, "-w", "-t", "60", "start")
            self._running = True
        except BaseException:
            self.stop()
            raise
        return self

    def create_database(self, name: str) -> str:
        """CREATE DATABASE `name` (a plain identifier); its DSN."""
        import psycopg

        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"database name {name!r}: lower-case letters, digits, _")
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn(name)

    def log_tail(self, lines: int = 20) -> str:
        if self.folder is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join((self.folder / "server.log").read_text().splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the folder."""
        if self.folder is None:
            return
        if self._running:
            with contextlib.suppress(PgUnavailable):
                self._call("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w",
                           "-t", "60", "stop")
            self._running = False
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> PgCluster:
        return self if self._running else self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    import argparse

    argparse.ArgumentParser(prog="python -m central.pg_cluster",
                            description="start a throwaway PostgreSQL cluster, print its URI, "
                                        "stop it on Ctrl-C").parse_args(argv)
    with PgCluster() as pg:
        print(pg.create_database("consentgate"), flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    sys.exit(main())
