"""The privacy invariant of token mode (the passenger-held key, EDPB Opinion 11/2024).

Three travellers enrol through the kiosk API with their own key and one shows it at the lane
board's scanner; the device folder (store, WAL, keys, settings, the JSON log) is then what an
operator, or someone who took the box, has. Before anything is deleted:

* the box's keys and files alone yield no template: every 32-byte window of every file (the
  store's files read through the store key: every decrypted page of the database and of every
  WAL frame, freed space included) and of every decrypted cell of the store (audit log
  included), and every hex, base32 and base64 run in them, is tried as the key of every sealed
  template, and none opens one;
* with one traveller's token exactly one template opens, theirs;
* no token, and no key in any encoding, is in any file, any decrypted cell, any log line, or
  any API response but that traveller's own enrolment receipt.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from helpers.kiosk import STAFF, b64_file, make_env, password_hash
from helpers.store_pages import page_images

from edge.consent.keys import write_key_file
from edge.consent.sealed import NONCE_BYTES, SealedTemplates, associated_data
from edge.consent.store import ConsentStore
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.token_setup import TokenGate
from foundation.logs import configure_logging
from foundation.settings import Settings

PHOTOS = ("img1.jpg", "img3.jpg", "img13.jpg")  # three different people
RUNS = re.compile(rb"[0-9A-Fa-f]{64}|[A-Z2-7]{52}|[A-Za-z0-9+/_-]{43}=?")


def device_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def decrypted_cells(store: ConsentStore) -> list[bytes]:
    """Every value of every table of the store, decrypted with the store key."""
    cells: list[bytes] = []
    tables = [r[0] for r in store.db.read("SELECT name FROM sqlite_master WHERE type='table'")]
    assert {"consents", "templates", "audit"} <= set(tables)
    for table in tables:
        for row in store.db.read(f"SELECT * FROM {table}"):
            for value in row:
                cells.append(value if isinstance(value, bytes)
                             else str(value).encode("utf-8"))
    return cells


def key_candidates(chunks: list[bytes]) -> set[bytes]:
    """Every 32-byte window, and every 32-byte decoding of a hex/base32/base64 run."""
    found: set[bytes] = set()
    for data in chunks:
        found.update(data[i:i + 32] for i in range(max(0, len(data) - 31)))
        for run in RUNS.findall(data):
            text = run.decode("ascii")
            for decode in (bytes.fromhex, lambda t: base64.b32decode(t + "====", casefold=True),
                           lambda t: base64.b64decode(t + "=" * (-len(t) % 4)),
                           lambda t: base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))):
                try:
                    raw = decode(text)
                except (ValueError, binascii.Error):
                    continue
                if len(raw) >= 32:
                    found.add(raw[:32])
    return found


@pytest.fixture
def token_day(tmp_path, kiosk_engine, faces_dir, fake_clock):
    """Three token enrolments and one scan on a device folder; returns what they left."""
    device = tmp_path / "device"
    keys = device / "keys"
    write_key_file(keys / "store.key")
    write_key_file(keys / "ref.key")
    settings = Settings.model_validate({
        "device": {"data_dir": str(device)},
        "lanes": {"lanes": [{"lane_id": "A", "zone": [(0, 0), (1, 0), (1, 1)]}]},
        "matching": {"mode": "token"}})
    (device / "settings.json").write_text(settings.model_dump_json())
    log_file = open(device / "daemon.jsonl", "a", buffering=1)  # noqa: SIM115
    configure_logging("debug", json_logs=True, stream=log_file)
    store = ConsentStore.open(device / "store.db", keys / "store.key", keys / "ref.key",
                              fake_clock, create=True)
    for name, role in STAFF.items():
        store.staff.upsert(name, role, password_hash())
    env = make_env(store, kiosk_engine, fake_clock, settings)
    env.services.tokens = gate = TokenGate.from_settings(settings, store, fake_clock, None,
                                                         lambda: None)
    receipts, responses = [], []
    with env.client:
        env.login()
        for i, photo in enumerate(PHOTOS):
            version = env.client.get("/api/consent-text").json()["version"]
            r = env.client.post("/api/enrolments", json={
                "reference": f"TOK00{i}", "consent_accepted": True, "consent_version": version,
                "photo": b64_file(faces_dir / photo)})
            assert r.status_code == 201, r.text
            receipts.append(r.json())
        r = env.client.post("/api/lanes/A/token", json={"token": receipts[0]["token"]})
        responses.append(r.text)
        gate.lanes.verdict("A", LaneMachine("A", LaneRules(), fake_clock))  # opens it
        assert gate.lanes.held("A") == "template"
        gate.close()  # wiped
        for path in ("/api/session", "/api/board", "/api/consents/summary", "/api/matching",
                     "/api/consent-text", "/api/health", "/api/boarding"):
            responses.append(env.client.get(path).text)
    files = device_files(device)  # with the WAL in use
    store_key = bytes.fromhex((keys / "store.key").read_text()[:64])
    pages = page_images(device / "store.db", store_key)
    cells = decrypted_cells(store)
    sealed_rows = store.db.read(
        "SELECT t.consent_id, c.scope, t.expires_at, t.embedding FROM templates t JOIN "
        "consents c ON c.consent_id = t.consent_id WHERE t.sealed = 1")
    yield {"store": store, "files": files, "pages": pages, "cells": cells,
           "rows": sealed_rows, "receipts": receipts, "responses": responses,
           "log": (device / "daemon.jsonl"), "clock": fake_clock}
    store.close()
    log_file.close()


def opens(row: tuple, key: bytes) -> bool:
    consent_id, scope, expires, blob = row
    try:
        AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                            associated_data(consent_id, scope, expires))
    except InvalidTag:
        return False
    return True


def test_the_box_alone_cannot_decrypt_any_template(token_day):
    rows = token_day["rows"]
    assert len(rows) == 3
    files = token_day["files"]
    assert {"keys/store.key", "keys/ref.key", "store.db", "store.db-wal", "daemon.jsonl",
            "settings.json"} <= set(files)
    chunks = [data for name, data in files.items() if not name.startswith("store.db")]
    chunks += token_day["pages"] + token_day["cells"]  # the store's files, decrypted
    candidates = key_candidates(chunks)
    assert len(candidates) > 10_000  # the files and cells really were read
    ciphers = [AESGCM(k) for k in candidates]
    opened = 0
    for consent_id, scope, expires, blob in rows:
        aad = associated_data(consent_id, scope, expires)
        for cipher in ciphers:
            try:
                cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
                opened += 1
            except InvalidTag:
                pass
    assert opened == 0
    # positive control: the same search finds a key hidden raw, in hex or in base32
    key = base64.b32decode(token_day["receipts"][1]["token"].split(".")[2] + "====")
    for hidden in (b"..." + key + b"...", b"key=" + key.hex().encode() + b";",
                   token_day["receipts"][1]["token"].encode()):
        found = [row[0] for row in rows for k in key_candidates([hidden]) if opens(row, k)]
        assert len(found) == 1


def test_one_token_opens_exactly_one_template(token_day):
    store, clock = token_day["store"], token_day["clock"]
    sealed = SealedTemplates(store, clock)
    for receipt in token_day["receipts"]:
        token = receipt["token"]
        unsealed = sealed.open(token)
        key = base64.b32decode(token.split(".")[2] + "====")
        assert [opens(row, key) for row in token_day["rows"]].count(True) == 1
        assert [row[0] for row in token_day["rows"] if opens(row, key)] == [unsealed.consent_id]
        assert abs(float(np.linalg.norm(unsealed.vector)) - 1) < 1e-4
        unsealed.wipe()


def forms(token: str) -> list[bytes]:
    key = base64.b32decode(token.split(".")[2] + "====")
    return [token.encode(), token.lower().encode(), token.split(".")[2].encode(), key,
            key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
            base64.urlsafe_b64encode(key).rstrip(b"=")]


def test_tokens_are_never_on_disk_in_a_log_or_in_another_response(token_day):
    log_lines = token_day["log"].read_text().splitlines()
    assert any(json.loads(line)["event"] == "token_opened" for line in log_lines)
    assert any(json.loads(line)["event"] == "kiosk_enrolled" for line in log_lines)
    haystacks = list(token_day["files"].values()) + token_day["pages"] + token_day["cells"]
    haystacks += [r.encode() for r in token_day["responses"]]
    for receipt in token_day["receipts"]:
        for needle in forms(receipt["token"]):
            for hay in haystacks:
                assert needle not in hay
    others = [json.dumps(r) for r in token_day["receipts"][1:]]
    for needle in forms(token_day["receipts"][0]["token"])[:2]:
        assert not any(needle.decode() in o for o in others)  # only in its own receipt
