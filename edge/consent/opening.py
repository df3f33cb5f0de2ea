"""Opening SQLCipher files: connection set-up and telling bad files apart without touching them.

sqlcipher3 answers "file is not a database" for a wrong key, a damaged file and a file that is
no database at all. We tell them apart by what we know:
- a plain SQLite file starts with the SQLite magic; other non-stores lack the uniform byte
  distribution of ciphertext, or are empty;
- our stores are created with a salt derived from their key (HMAC of the key), so the first 16
  bytes of the file name the key: a salt that matches means the key is right and any failure is
  damage; a salt that differs means a wrong key, unless most pages still authenticate under the
  key (then the salt bytes themselves are damaged);
- a length that is not a whole number of pages is damage (truncation).
All probing uses a read-only connection, so a refused file stays byte-identical.

Page size: new stores use 16 KiB cipher pages (SQLCipher's default is 4 KiB). A 2 KiB template
then shares a page with six others instead of filling one alone, which more than halves the
page decrypt/re-encrypt/zero work of a purge. SQLCipher does not record the page size in the
(encrypted) header, so stores made with the earlier 4 KiB pages are recognised by trying it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlcipher3 import dbapi2 as sqlcipher

from edge.consent.errors import (
    CorruptStoreError,
    NewerSchemaError,
    NotAStoreError,
    WrongKeyError,
)
from edge.consent.schema import LATEST

PAGE_SIZE = 16384          # cipher_page_size of stores created now
LEGACY_PAGE_SIZE = 4096    # stores created before the switch still open
PAGE_SIZES = (PAGE_SIZE, LEGACY_PAGE_SIZE)
SALT_BYTES = 16
SQLITE_MAGIC = b"SQLite format 3\x00"
DatabaseError = sqlcipher.DatabaseError

Connect = Callable[..., Any]


def derive_salt(key: bytes) -> bytes:
    """The file salt of a store keyed with `key` (public: it is in the file's first bytes)."""
    return hmac.new(key, b"consentgate/store-salt/v1", hashlib.sha256).digest()[:SALT_BYTES]


def key_statement(key: bytes, name: str = "key") -> str:
    """`PRAGMA key` in raw-key syntax (key and salt as hex); never a passphrase."""
    return f"PRAGMA {name} = \"x'{key.hex()}{derive_salt(key).hex()}'\""


def page_size_of(path: Path, key: bytes) -> int:
    """The cipher page size that opens `path` with `key` (PAGE_SIZE for a new or empty file,
    and when nothing opens it: the caller's checks then report why). Read-only."""
    if not path.exists() or path.stat().st_size == 0:
        return PAGE_SIZE
    for size in PAGE_SIZES:
        if path.stat().st_size % size:
            continue
        conn = connect(path, key, read_only=True, page_size=size)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return size
        except DatabaseError:
            continue
        finally:
            conn.close()
    return PAGE_SIZE


def connect(path: Path, key: bytes, *, read_only: bool = False,
            page_size: int | None = None) -> Any:
    """A keyed connection with the store's pragmas (autocommit; callers BEGIN explicitly).

    `page_size=None` finds the page size of an existing file (see `page_size_of`).
    """
    if page_size is None:
        page_size = page_size_of(Path(path), key)
    if read_only:
        conn = sqlcipher.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                 check_same_thread=False)
    else:
        conn = sqlcipher.connect(str(path), isolation_level=None, check_same_thread=False,
                                 timeout=30.0)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute("PRAGMA cipher_memory_security = ON")
        conn.execute(key_statement(key))
        conn.execute(f"PRAGMA cipher_page_size = {int(page_size)}")
        if not read_only:
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA busy_timeout = 30000")
    except BaseException:
        conn.close()
        raise
    return conn


def apply_write_pragmas(conn: Any) -> None:
    """Pragmas that need a readable database (after the key was accepted)."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise CorruptStoreError("the store could not switch to WAL journaling: check that its "
                                "folder is writable and on a local file system")
    conn.execute("PRAGMA synchronous = FULL")


def _entropy_bits(data: bytes) -> float:
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum())


def classify_bytes(path: Path) -> None:
    """Refuse files that are plainly not a store, by their bytes alone (no SQLite involved)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(PAGE_SIZE)
    if size == 0:
        raise NotAStoreError(f"{path} is an empty file, not a consent store: restore the store "
                             "from backup or move the file away and re-provision")
    if head.startswith(SQLITE_MAGIC):
        raise NotAStoreError(f"{path} is a plain (unencrypted) SQLite database, not a consent "
                             "store: check the store path in the settings")
    expected = min(8.0, math.log2(len(head)))
    if _entropy_bits(head) < 0.85 * expected:
        raise NotAStoreError(f"{path} is not a consent store (its bytes are not ciphertext): "
                             "check the store path in the settings")
    if size % LEGACY_PAGE_SIZE:
        raise CorruptStoreError(f"{path} is damaged (its length is not a whole number of "
                                "pages; it was truncated or appended to): restore it from "
                                "backup or re-provision")


def _page_failures(conn: Any) -> int:
    try:
        return len(conn.execute("PRAGMA cipher_integrity_check").fetchall())
    except DatabaseError:
        return -1


def probe(path: Path, key: bytes, *, full_check: bool) -> int:
    """Check `path` opens with `key` and return its schema version, or raise a clear error.

    Read-only: the file is never modified here.
    """
    classify_bytes(path)
    with open(path, "rb") as fh:
        file_salt = fh.read(SALT_BYTES)
    page_size = page_size_of(path, key)
    if path.stat().st_size % page_size:
        raise CorruptStoreError(f"{path} is damaged (its length is not a whole number of "
                                "pages; it was truncated or appended to): restore it from "
                                "backup or re-provision")
    pages = path.stat().st_size // page_size
    conn = connect(path, key, read_only=True, page_size=page_size)
    try:
        if file_salt != derive_salt(key):
            failures = _page_failures(conn)
            if failures == -1 or failures >= pages:
                raise WrongKeyError(f"the key does not open {path}: check that the settings "
                                    "name this store's key file (after a key rotation, the new "
                                    "one); the store was not changed")
            raise CorruptStoreError(f"{path} is damaged (its salt bytes were altered): restore "
                                    "it from backup or re-provision")
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if full_check:
                bad = _page_failures(conn)
                if bad:
                    raise CorruptStoreError(f"{path} is damaged ({max(bad, 1)} page(s) fail "
                                            "authentication): restore it from backup or "
                                            "re-provision")
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
                if result != "ok":
                    raise CorruptStoreError(f"{path} is damaged (integrity check failed): "
                                            "restore it from backup or re-provision")
            if not tables:
                return 0
            if "schema_version" not in tables:
                raise NotAStoreError(f"{path} is an encrypted database but not a consent "
                                     "store: check the store path in the settings")
            version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        except DatabaseError as exc:
            raise CorruptStoreError(f"{path} is damaged ({exc}): restore it from backup or "
                                    "re-provision") from None
    finally:
        conn.close()
    if version > LATEST:
        raise NewerSchemaError(f"{path} has schema version {version}, newer than this "
                               f"software's {LATEST}: upgrade the software; the store was not "
                               "changed")
    return int(version)
