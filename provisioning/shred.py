"""Secure deletion of files: overwrite in place with random bytes, fsync, then unlink.

Used by `wipe`, by `rotate-key` for the old key, and by `init --force`. Overwriting in place
(not truncating, not replacing) means every other name for the same inode reads random bytes
afterwards; on flash storage this is best effort, which is why keys are shredded first: without
them the SQLCipher store is ciphertext.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def overwrite_file(path: Path, passes: int = 1) -> int:
    """Overwrite a regular file's bytes in place with random data; returns its size."""
    size = path.stat().st_size
    with open(path, "r+b", buffering=0) as fh:
        for _ in range(passes):
            fh.seek(0)
            left = size
            while left > 0:
                n = min(left, _CHUNK)
                fh.write(secrets.token_bytes(n))
                left -= n
            fh.flush()
            os.fsync(fh.fileno())
    return size


def shred_file(path: Path | str, passes: int = 1) -> bool:
    """Overwrite and remove one file; False when it did not exist. Links are only unlinked."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
        return True
    if not path.exists():
        return False
    if not path.is_file():
        raise IsADirectoryError(f"{path} is not a regular file")
    overwrite_file(path, passes)
    path.unlink()
    _fsync_dir(path.parent)
    return True


def shred_tree(root: Path | str, passes: int = 1) -> int:
    """Shred every file below `root`, then remove the empty folders; returns files shredded."""
    root = Path(root)
    if not root.exists():
        return 0
    count = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            if shred_file(Path(dirpath) / name, passes):
                count += 1
        for name in dirnames:
            d = Path(dirpath) / name
            if d.is_symlink():
                d.unlink()
            else:
                d.rmdir()
    root.rmdir()
    return count


def shred_files(paths: Iterable[Path], passes: int = 1) -> int:
    return sum(1 for p in paths if shred_file(p, passes))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
