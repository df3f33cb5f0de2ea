"""Test helper: the decrypted page images of a SQLCipher 4 store file and of every frame of its
WAL (AES-256-CBC with the raw store key; the layout tests/test_consent_forensic.py checks), for
forensic scans that look at everything a store file holds, freed space included."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from edge.consent import opening

PAGE = opening.PAGE_SIZE
RESERVE = 80  # 16-byte IV + 64-byte HMAC-SHA512 at the end of each page
WAL_HEADER, FRAME_HEADER = 32, 24


def decrypt_page(page: bytes, pgno: int, key: bytes) -> bytes:
    start = 16 if pgno == 1 else 0  # page 1 begins with the file salt
    iv = page[PAGE - RESERVE:PAGE - RESERVE + 16]
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(page[start:PAGE - RESERVE]) + dec.finalize()


def page_images(path: Path, key: bytes) -> list[bytes]:
    """Every decrypted page of the database file and of every frame in its WAL."""
    out = []
    data = path.read_bytes()
    for i in range(len(data) // PAGE):
        out.append(decrypt_page(data[i * PAGE:(i + 1) * PAGE], i + 1, key))
    wal = Path(f"{path}-wal")
    if wal.exists():
        w = wal.read_bytes()
        off = WAL_HEADER
        while off + FRAME_HEADER + PAGE <= len(w):
            pgno = int.from_bytes(w[off:off + 4], "big")
            out.append(decrypt_page(w[off + FRAME_HEADER:off + FRAME_HEADER + PAGE], pgno, key))
            off += FRAME_HEADER + PAGE
    return out
