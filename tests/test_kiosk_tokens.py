"""Token mode at the kiosk: the receipt (the only response that ever carries the traveller's
key: text, QR code, PDF, not cached), the choice a `both` gate asks for, the consent text that
says how the gate finds the traveller, and the lane board's keyboard-wedge route (answers
"received", never the key)."""

from __future__ import annotations

import base64

import pytest
from helpers.kiosk import b64_file, make_env

from edge.consent.sealed import SealedTemplates
from edge.decisions.lanes import LaneMachine, LaneRules
from edge.decisions.token_setup import TokenGate
from edge.kiosk.receipt import qr_svg_data_uri
from foundation.settings import Settings

LANES = [{"lane_id": "A", "zone": [(0, 0), (0.02, 0), (0.02, 0.02)]},
         {"lane_id": "B", "zone": [(0, 0), (0.02, 0), (0.02, 0.02)]}]
GALLERY_RECEIPT = {"withdrawal_code", "expires_at", "expires_at_iso", "scope", "message"}


def settings(mode: str, **matching) -> Settings:
    return Settings.model_validate({"lanes": {"lanes": LANES},
                                    "matching": {"mode": mode, **matching}})


@pytest.fixture
def gate_env(kiosk_store, kiosk_engine, fake_clock, request):
    mode = getattr(request, "param", "token")
    env = make_env(kiosk_store, kiosk_engine, fake_clock, settings(mode))
    env.services.tokens = TokenGate.from_settings(env.services.settings, kiosk_store,
                                                  fake_clock, None, lambda: None)
    with env.client:
        yield env
    env.services.tokens.close()


def enrol(env, photo: str, reference: str = "ABC123", **extra):
    version = env.client.get("/api/consent-text").json()["version"]
    body = {"reference": reference, "consent_accepted": True, "consent_version": version,
            "photo": photo, **extra}
    return env.client.post("/api/enrolments", json=body)


def every_other_response(env) -> str:
    paths = ["/api/session", "/api/board", "/api/consents/summary", "/api/matching",
             "/api/consent-text", "/api/health", "/api/boarding"]
    return "\n".join(env.client.get(p).text for p in paths)


def test_token_receipt_carries_the_key_once(gate_env, faces_dir, fake_clock):
    gate_env.login()
    r = enrol(gate_env, b64_file(faces_dir / "img1.jpg"))
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    doc = r.json()
    assert set(doc) == GALLERY_RECEIPT | {"matching", "token", "token_qr_svg", "receipt_pdf"}
    token = doc["token"]
    assert doc["matching"] == "token" and token.startswith("CG1.")
    assert doc["token_qr_svg"] == qr_svg_data_uri(token)
    assert base64.b64decode(doc["receipt_pdf"]).startswith(b"%PDF-")
    assert "QR code is your boarding key" in doc["message"]
    store = gate_env.store
    assert store.active_templates() == []  # nothing the gallery could search
    assert SealedTemplates(store, fake_clock).open(token).consent_id  # the key opens it
    key = token.split(".")[2]
    text = every_other_response(gate_env)
    assert token not in text and key not in text and key.lower() not in text


def test_gallery_gate_receipt_is_as_before_and_refuses_token_enrolment(kiosk, faces_dir):
    kiosk.login()
    photo = b64_file(faces_dir / "img1.jpg")
    r = enrol(kiosk, photo, matching="token")
    assert r.status_code == 422 and r.json()["error"] == "matching_choice"
    assert kiosk.store.stats()["active_consents"] == 0
    r = enrol(kiosk, photo)
    assert r.status_code == 201 and set(r.json()) == GALLERY_RECEIPT
    assert len(kiosk.store.active_templates()) == 1


@pytest.mark.parametrize("gate_env", ["both"], indirect=True)
def test_both_gate_asks_the_traveller_to_choose(gate_env, faces_dir):
    gate_env.login()
    photo = b64_file(faces_dir / "img1.jpg")
    r = enrol(gate_env, photo)
    assert r.status_code == 422 and r.json()["error"] == "matching_choice"
    assert gate_env.store.stats()["active_consents"] == 0  # nothing stored
    assert set(enrol(gate_env, photo, "ABC123", matching="gallery").json()) == GALLERY_RECEIPT
    assert len(gate_env.store.active_templates()) == 1
    assert "token" in enrol(gate_env, photo, "DEF456", matching="token").json()
    assert len(gate_env.store.active_templates()) == 1  # the token traveller is not in it
    info = gate_env.client.get("/api/matching").json()
    assert info["mode"] == "both" and [c["id"] for c in info["choices"]] == ["gallery", "token"]
    assert info["kiosk_scan"] is True and info["lanes"] == ["A", "B"]


def test_consent_text_says_how_the_gate_finds_the_traveller(gate_env, kiosk):
    gate_env.login()
    text = gate_env.client.get("/api/consent-text").json()
    ids = [s["id"] for s in text["sections"]]
    assert ids == ["purpose", "stored", "matching", "retention", "withdraw", "alternative"]
    words = next(s["body"] for s in text["sections"] if s["id"] == "matching")
    assert "only you" in words and "no copy" in words
    kiosk.login()
    plain = kiosk.client.get("/api/consent-text").json()
    assert "matching" not in [s["id"] for s in plain["sections"]]
    assert plain["version"] != text["version"]


def test_lane_board_scanner_route(gate_env, fake_clock):
    token = "CG1." + "A" * 32 + "." + "B" * 52 + ".CCCCCCCC"
    gate_env.login("eng1")
    r = gate_env.client.post("/api/lanes/A/token", json={"token": token})
    assert r.status_code == 403  # engineers do not handle travellers
    gate_env.login()
    r = gate_env.client.post("/api/lanes/A/token", json={"token": token})
    assert r.status_code == 202, r.text
    assert token not in r.text and r.json()["received"] is True
    assert gate_env.client.post("/api/lanes/Z/token",
                                json={"token": token}).status_code == 404
    assert gate_env.client.post("/api/lanes/A/token",
                                json={"token": "x" * 300}).status_code == 422
    lanes = gate_env.services.tokens.lanes
    lanes.verdict("A", LaneMachine("A", LaneRules(), fake_clock))  # the inference thread
    assert lanes.held("A") == "token_invalid"  # its check fails: refused, never looked up


def test_gallery_gate_takes_no_tokens_at_the_kiosk(kiosk):
    kiosk.login()
    r = kiosk.client.post("/api/lanes/A/token", json={"token": "CG1.X"})
    assert r.status_code == 409 and r.json()["error"] == "tokens_not_taken"
    assert kiosk.client.get("/api/matching").json()["kiosk_scan"] is False
