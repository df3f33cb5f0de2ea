"""`python -m edge demo --matching token` with real processes on loopback: the token day's every
outcome (the traveller with their key boards 1:1, one without a key and a withdrawn and an
altered key go to the staffed lane), what central counted, and the token side of the privacy
invariant over the whole run: no token, QR code or receipt PDF in any file the run wrote (the
store and its WAL included, through the store key), in any log line, or in any kept API
response; the kept receipts have them redacted. One demo run serves every test here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.demo import run_demo
from helpers.store_pages import page_images

pytestmark = [pytest.mark.slow, pytest.mark.integration]
TOKEN = re.compile(rb"CG1\.[0-9A-F]{32}\.[A-Z2-7]{52}\.[A-Z2-7]{8}", re.IGNORECASE)
KEY_RUN = re.compile(rb"(?<![A-Z2-7])[A-Z2-7]{52}(?![A-Z2-7])")


@pytest.fixture(scope="module")
def token_run(tmp_path_factory: pytest.TempPathFactory, installed_model_dir: Path) -> dict:
    workdir = tmp_path_factory.mktemp("token-demo")
    return run_demo(workdir, "--matching", "token")


def test_every_row_of_the_token_day_reads_ok(token_run: dict) -> None:
    s = token_run["summary"]
    by_step = {o["step"][0]: o for o in s["outcomes"]}
    assert set(by_step) == set("1234"), s["outcomes"]
    assert by_step["1"]["decision"] == "granted" and by_step["1"]["boarded"]
    assert (by_step["2"]["decision"], by_step["2"]["reason"]) == ("not_matched", "no_token")
    assert "store unchanged" in by_step["2"]["notes"]
    assert (by_step["3"]["decision"], by_step["3"]["reason"]) == ("not_matched",
                                                                  "token_withdrawn")
    assert (by_step["4"]["decision"], by_step["4"]["reason"]) == ("not_matched",
                                                                  "token_invalid")
    assert all(o["ok"] for o in s["outcomes"]) and s["ok"] is True and token_run["rc"] == 0
    table = token_run["stdout"].split("\noutcomes\n", 1)[1]
    assert table.count("  ok  ") == 4 and "BAD" not in table


def test_central_counted_one_match_and_three_staffed_lane(token_run: dict) -> None:
    c = token_run["summary"]["collector"]
    assert c["matched"] == 1 and c["gates_opened"] == 1 and c["passages"] == 1
    assert c["not_matched"] == 3 and c["presented"] == 4


def test_no_token_anywhere_the_run_wrote(token_run: dict) -> None:
    workdir: Path = token_run["workdir"]
    files = [p for p in workdir.rglob("*") if p.is_file()]
    store = next(p for p in files if p.name == "store.db")
    key = bytes.fromhex((store.parent / "keys" / "store.key").read_text()[:64])
    chunks = [p.read_bytes() for p in files] + page_images(store, key)
    chunks.append((token_run["stdout"] + token_run["stderr"]).encode())
    for data in chunks:
        assert not TOKEN.search(data)
        assert b"data:image/svg" not in data and b"JVBERi0" not in data  # QR code, PDF
    for line in (workdir / "logs" / "daemon.jsonl").read_text().splitlines():
        assert not KEY_RUN.search(line.encode()), line
    events = [json.loads(line)["event"]
              for line in (workdir / "logs" / "daemon.jsonl").read_text().splitlines()]
    assert events.count("token_opened") == 1 and events.count("token_refused") == 2
    assert "token_wiped" in events


def test_kept_receipts_have_the_key_redacted(token_run: dict) -> None:
    api = token_run["workdir"] / "api"
    receipts = [json.loads(p.read_text().partition("\n")[2])
                for p in sorted(api.iterdir()) if p.name.endswith("_api_enrolments.txt")]
    assert len(receipts) == 3
    for r in receipts:
        assert r["matching"] == "token"
        for field in ("token", "token_qr_svg", "receipt_pdf", "withdrawal_code"):
            assert r[field].startswith("<shown once"), field
