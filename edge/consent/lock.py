"""The store's exclusive advisory lock: one process at a time may have a consent store open.

`<store>.lock` beside the store file is locked with `fcntl.flock(LOCK_EX | LOCK_NB)` for as long
as a `ConsentStore` (or a provisioning tool) holds it; the kernel drops the lock when the holder
closes it or dies (even by SIGKILL), so a crash never leaves a stale lock. The lock file holds
the holder's process id only, for the error message. Inside one process the store object is
shared between threads; a second opener in the same process is refused too.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path

from edge.consent.errors import StoreBusyError, StoreNotFoundError, StoreOpenError

_registry_lock = threading.Lock()
_held: dict[str, StoreLock] = {}


def lock_path(store_path: Path) -> Path:
    """The lock file of the store at `store_path`: `<store>.lock` beside it."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".lock")


def _holder_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class StoreLock:
    """An exclusive, process-wide lock on one store (see the module docstring)."""

    def __init__(self, store_path: Path, fd: int, key: str) -> None:
        self.store_path = Path(store_path)
        self._fd: int | None = fd
        self._key = key

    @classmethod
    def acquire(cls, store_path: Path) -> StoreLock:
        """Lock the store at `store_path` or raise StoreBusyError (the file is not touched)."""
        store_path = Path(store_path)
        path = lock_path(store_path)
        key = os.path.realpath(path)
        with _registry_lock:
            if key in _held:
                raise StoreBusyError(
                    f"the consent store {store_path} is already open in this process: share the "
                    "one ConsentStore (close it before opening it again)")
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                raise StoreNotFoundError(
                    f"no consent store at {store_path} (its folder is missing): run `python -m "
                    "provisioning init` (or check the store path in the settings)") from None
            except PermissionError:
                raise StoreOpenError(
                    f"cannot create the lock file {path}: run as the user that owns the "
                    "device folder (the consentgate service user)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                pid = _holder_pid(path)
                who = f" (process {pid})" if pid else ""
                raise StoreBusyError(
                    f"the consent store {store_path} is in use by the daemon or another "
                    f"tool{who}: stop it first (`systemctl stop consentgate`, or Ctrl-C the "
                    "demo), then run this again; nothing was changed") from None
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except OSError:
                pass  # the pid is only for the message; the lock itself is held
            lock = cls(store_path, fd, key)
            _held[key] = lock
            return lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (idempotent); the lock file itself stays (an unlocked file is harmless)."""
        with _registry_lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            if _held.get(self._key) is self:
                del _held[self._key]
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
