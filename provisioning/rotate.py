"""`rotate-key`: re-encrypt the consent store under a fresh 256-bit key (SQLCipher rekey).

Order of operations, so no crash loses the store:
  1. write the new key to keys/store.key.new (0600);
  2. open the store with the old key, note its content digest, rekey to the new key, close;
  3. reopen with the new key: PRAGMA integrity_check, audit chain, same content digest;
  4. only then shred the old key and move the new one into place.
A leftover store.key.new from an interrupted rotation is resolved on the next run: whichever
key opens the store is kept. The store's exclusive lock (edge.consent.lock) is held from before
step 1 to after step 4, so a running daemon makes rotate-key refuse (StoreBusyError, nothing
changed) and no daemon can open the store half-way through.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from rich.progress import Progress

from edge.consent.lock import StoreLock
from foundation.clock import Clock, SystemClock
from foundation.errors import ConsentGateError
from provisioning.common import add_device_args, console, device_from_args, progress_bar, start
from provisioning.device import Device
from provisioning.errors import RotationError
from provisioning.shred import shred_file

if TYPE_CHECKING:
    from edge.consent.store import ConsentStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RotationReport:
    digest: str
    recovered: bool


def _open(device: Device, key_file: Path, clock: Clock, lock: StoreLock) -> ConsentStore:
    from edge.consent.store import ConsentStore

    s = device.settings
    return ConsentStore.open(s.store_path, key_file, s.hmac_secret_file, clock, lock=lock)


def _opens(device: Device, key_file: Path, clock: Clock, lock: StoreLock) -> bool:
    try:
        store = _open(device, key_file, clock, lock)
    except ConsentGateError:
        return False
    store.close()
    return True


def check_store(store: ConsentStore, key_file: Path) -> str:
    """Audit chain of an open store + integrity check; returns its content digest."""
    from provisioning.store_check import inspect_store

    store.audit_log.verify()
    found = inspect_store(store.path, key_file)
    if found.problems:
        raise RotationError(f"the store fails PRAGMA integrity_check ({found.problems[0]}): "
                            "restore it from backup before rotating")
    return found.digest


def _recover(device: Device, clock: Clock, lock: StoreLock) -> bool:
    """Resolve a rotation interrupted earlier; True when there was one."""
    key = device.settings.store_key_file
    new = key.with_name(key.name + ".new")
    if not new.exists():
        return False
    if key.exists() and _opens(device, key, clock, lock):
        shred_file(new)  # rekey never happened: the new key is useless
        log.warning("rotation_recovered", kept="old")
    elif _opens(device, new, clock, lock):
        shred_file(key)
        os.replace(new, key)
        log.warning("rotation_recovered", kept="new")
    else:
        raise RotationError(f"neither {key.name} nor {new.name} opens the store: restore the "
                            "store and its key from backup")
    return True


def rotate_store_key(device: Device, clock: Clock | None = None,
                     progress: Progress | None = None) -> RotationReport:
    """Rekey the store; the old key is shredded only after the new one verifies.

    Raises StoreBusyError (and changes nothing) while the daemon or another tool has the store.
    """
    clock = clock or SystemClock()
    with StoreLock.acquire(device.settings.store_path) as lock:  # StoreBusyError: daemon runs
        return _rotate_locked(device, clock, progress, lock)


def _rotate_locked(device: Device, clock: Clock, progress: Progress | None,
                   lock: StoreLock) -> RotationReport:
    from edge.consent.keys import write_key_file

    recovered = _recover(device, clock, lock)
    key = device.settings.store_key_file
    new = key.with_name(key.name + ".new")
    task = progress.add_task("rotating the store key", total=3) if progress else None

    def step() -> None:
        if progress is not None and task is not None:
            progress.advance(task)

    store: ConsentStore | None  # None once closed after a failed rekey
    store = _open(device, key, clock, lock)
    try:
        before = check_store(store, key)
        write_key_file(new)
        try:
            store.rekey(new)
        except BaseException:
            store.close()
            store = None
            if not _opens(device, new, clock, lock):
                shred_file(new)
            raise
    finally:
        if store is not None:
            store.close()
    step()
    try:
        reopened = _open(device, new, clock, lock)
    except ConsentGateError as exc:
        raise RotationError(f"the store did not reopen with the new key ({exc}); the old key "
                            f"is kept in {key} and {new.name} is left for the next rotate-key "
                            "run to resolve") from None
    try:
        after = check_store(reopened, new)
    finally:
        reopened.close()
    if after != before:
        raise RotationError("the store's content changed during rotation: stop the daemon, "
                            "then run rotate-key again")
    step()
    shred_file(key)
    os.replace(new, key)
    step()
    log.info("store_key_rotated", recovered=recovered)
    return RotationReport(digest=after, recovered=recovered)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Stop the daemon first (`systemctl stop consentgate`): while it has the "
                     "store open, rotate-key refuses and changes nothing. Start it again "
                     "afterwards. The old key is shredded only after the store verifies with "
                     "the new one.")
    add_device_args(parser)


def run(args: argparse.Namespace) -> int:
    start(args)
    device = device_from_args(args)
    out = console()
    with progress_bar(out) as progress:
        report = rotate_store_key(device, progress=progress)
    if report.recovered:
        out.print("an earlier interrupted rotation was resolved first")
    out.print(f"store key rotated: the store verifies with the new key "
              f"({device.settings.store_key_file}) and the old key is shredded; start the "
              "daemon again")
    return 0
