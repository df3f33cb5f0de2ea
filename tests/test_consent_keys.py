"""Key files: creation, refusal to overwrite, mode and format checks."""

from __future__ import annotations

import os
import stat

import pytest

from edge.consent.errors import (
    KeyFileExistsError,
    KeyFileFormatError,
    KeyFileMissingError,
    KeyFilePermissionError,
)
from edge.consent.keys import read_key_file, write_key_file


def test_write_then_read_round_trip(tmp_path):
    path = tmp_path / "keys" / "store.key"
    write_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert len(text) == 65 and text.endswith("\n") and text[:64] == text[:64].lower()
    key = read_key_file(path)
    assert len(key) == 32 and key.hex() == text[:64]


def test_two_keys_differ(tmp_path):
    write_key_file(tmp_path / "a")
    write_key_file(tmp_path / "b")
    assert read_key_file(tmp_path / "a") != read_key_file(tmp_path / "b")


def test_refuses_to_overwrite(tmp_path):
    path = tmp_path / "k"
    write_key_file(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileExistsError, match="already exists"):
        write_key_file(path)
    assert path.read_bytes() == before


def test_missing(tmp_path):
    with pytest.raises(KeyFileMissingError, match="provisioning"):
        read_key_file(tmp_path / "nope")


def test_group_readable_is_refused(tmp_path):
    path = tmp_path / "k"
    write_key_file(path)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFilePermissionError, match="chmod 600"):
        read_key_file(path)


@pytest.mark.parametrize("content", [b"", b"ab" * 31, b"AB" * 32, b"zz" * 32, b"ab" * 32 + b"\n\n",
                                     b"ab" * 33, b" " + b"ab" * 32,
                                     b"ab" * 32 + b"\n" + b"x" * (1 << 20)])  # read: 66 bytes
def test_bad_format(tmp_path, content):
    path = tmp_path / "k"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, content)
    os.close(fd)
    with pytest.raises(KeyFileFormatError, match="64 lowercase hex"):
        read_key_file(path)


def test_no_newline_is_fine(tmp_path):
    path = tmp_path / "k"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"0f" * 32)
    os.close(fd)
    assert read_key_file(path) == bytes([0x0F]) * 32
