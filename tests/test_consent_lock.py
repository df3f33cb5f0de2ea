"""The store's exclusive lock: a second process is refused clearly; close and SIGKILL release."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from helpers.consent import StoreHolder

from edge.consent.errors import StoreBusyError, StoreNotFoundError
from edge.consent.keys import write_key_file
from edge.consent.lock import StoreLock, lock_path
from edge.consent.store import ConsentStore
from foundation.clock import FakeClock


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, Path, Path]:
    keys = tmp_path / "keys"
    write_key_file(keys / "store.key")
    write_key_file(keys / "ref.key")
    path = tmp_path / "store.db"
    ConsentStore.open(path, keys / "store.key", keys / "ref.key", FakeClock(), create=True).close()
    return path, keys / "store.key", keys / "ref.key"


def _open(made, **kw) -> ConsentStore:
    path, key, ref = made
    return ConsentStore.open(path, key, ref, FakeClock(), **kw)


def test_second_process_is_refused_with_a_clear_message(made) -> None:
    path = made[0]
    before = path.read_bytes()
    with StoreHolder(*made) as holder:
        with pytest.raises(StoreBusyError) as err:
            _open(made)
        msg = str(err.value)
        assert "in use by the daemon or another tool" in msg
        assert f"process {holder.pid}" in msg
        assert "systemctl stop consentgate" in msg and "Ctrl-C the demo" in msg
        assert "nothing was changed" in msg
        with pytest.raises(StoreBusyError):  # the bare lock, as provisioning tools take it
            StoreLock.acquire(path)
    assert path.read_bytes() == before  # refused openers never touched the store
    with _open(made) as store:  # holder gone: the store opens again
        assert store.audit_log.verify() >= 1


def test_close_in_the_holder_releases_the_lock(made) -> None:
    with StoreHolder(*made) as holder:
        with pytest.raises(StoreBusyError):
            _open(made)
        holder.close_store()  # the child lives on, but has closed its store
        with _open(made) as store:
            store.audit_log.record("checked", "test")


def test_sigkill_of_the_holder_releases_the_lock(made) -> None:
    with StoreHolder(*made) as holder:
        with pytest.raises(StoreBusyError):
            _open(made)
        holder.kill()  # no close(): the kernel drops the flock with the process
        with _open(made) as store:
            assert store.audit_log.verify() >= 1


def test_one_store_per_process_shared_by_threads(made) -> None:
    store = _open(made)
    try:
        with pytest.raises(StoreBusyError, match="already open in this process"):
            _open(made)
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                store.audit_log.record("thread", f"t{i}")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
    finally:
        store.close()
    store.close()  # idempotent, and must not release a lock someone else took meanwhile
    again = _open(made)
    try:
        store.close()
        with pytest.raises(StoreBusyError):
            StoreLock.acquire(made[0])
    finally:
        again.close()


def test_a_failed_open_releases_the_lock(made, tmp_path: Path) -> None:
    path, _key, ref = made
    wrong = tmp_path / "wrong.key"
    write_key_file(wrong)
    with pytest.raises(Exception, match="key does not open"):
        ConsentStore.open(path, wrong, ref, FakeClock())
    with _open(made):
        pass


def test_caller_held_lock_spans_several_opens(made) -> None:
    with StoreLock.acquire(made[0]) as lock:
        for _ in range(2):
            with _open(made, lock=lock) as store:
                store.audit_log.record("checked", "test")
        assert lock.held  # a store opened with the caller's lock leaves it held on close
        with pytest.raises(StoreBusyError):
            _open(made)
    assert not lock.held
    with _open(made):
        pass


def test_lock_file_is_private_and_missing_folder_is_not_found(made, tmp_path: Path) -> None:
    with _open(made):
        assert lock_path(made[0]).stat().st_mode & 0o077 == 0
    with pytest.raises(StoreNotFoundError):
        StoreLock.acquire(tmp_path / "nowhere" / "store.db")
