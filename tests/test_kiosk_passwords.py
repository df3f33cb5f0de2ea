"""Staff password hashing (scrypt) and the boarding-reference parser."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.kiosk.errors import BadReferenceError
from edge.kiosk.passwords import (
    PasswordPolicyError,
    hash_password,
    needs_rehash,
    verify_password,
)
from edge.kiosk.references import parse_reference

BCBP = "M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100"


@pytest.fixture(scope="module")
def encoded() -> str:
    return hash_password("correct horse battery")


def test_hash_is_self_describing_salted_scrypt(encoded):
    scheme, log2_n, r, p, salt, digest = encoded.split("$")
    assert scheme == "scrypt" and int(log2_n) >= 14 and int(r) >= 8 and int(p) >= 1
    assert 128 * int(r) * 2 ** int(log2_n) >= 16 * 1024 * 1024  # memory-hard: >= 16 MiB
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert encoded != hash_password("correct horse battery")  # fresh salt each time
    assert not needs_rehash(encoded)
    assert "correct" not in encoded


def test_verify(encoded):
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("correct horse batterY", encoded)
    assert not verify_password("", encoded)


@pytest.mark.parametrize("bad", ["", "plain", "scrypt$15$8$1$!!$!!", "bcrypt$2b$12$abc",
                                 "scrypt$40$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                                 "scrypt$x$8$1$AAAA$AAAA"])
def test_malformed_hashes_never_verify(bad):
    assert verify_password("anything", bad) is False


def test_weaker_parameters_still_verify_but_need_rehash():
    import hashlib
    salt = b"0123456789abcdef"
    dk = hashlib.scrypt(b"pw-123456789", salt=salt, n=2 ** 10, r=8, p=1, dklen=32)
    old = f"scrypt$10$8$1${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"
    assert verify_password("pw-123456789", old)
    assert needs_rehash(old)


@pytest.mark.parametrize("bad", ["", "x" * 2000])
def test_unhashable_passwords_are_refused(bad):
    with pytest.raises(PasswordPolicyError):
        hash_password(bad)


@given(st.text(max_size=40))
def test_verify_never_raises_on_any_input(text):
    assert verify_password(text, "scrypt$10$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "=") in (
        True, False)


# ------------------------------------------------------------------------------ references
def test_booking_reference_is_normalised():
    ref = parse_reference("  abc123 ")
    assert ref.booking_ref == "ABC123" and ref.scope is None
    assert "ABC123" not in repr(ref)


def test_bcbp_gives_reference_and_flight_scope_without_the_name():
    ref = parse_reference(BCBP)
    assert ref.booking_ref == "ABC123" and ref.scope == "AC0834/326"
    assert "DESMARAIS" not in repr(ref)


@pytest.mark.parametrize("bad", ["", "   ", "AB", "ABC-123!", "ABCDEFGHIJ",
                                 "M1TOO/SHORT", BCBP[:40], BCBP.replace("326", "999"),
                                 BCBP[:23] + "       " + BCBP[30:], "ABC\x00123"])
def test_bad_references_are_refused_with_advice(bad):
    with pytest.raises(BadReferenceError, match=r"booking reference|boarding pass"):
        parse_reference(bad)


@given(st.text(max_size=80))
def test_parser_only_ever_raises_bad_reference(text):
    try:
        ref = parse_reference(text)
    except BadReferenceError:
        return
    pnr = ref.booking_ref
    assert pnr.isascii() and pnr.isalnum() and pnr == pnr.upper() and 5 <= len(pnr) <= 8
