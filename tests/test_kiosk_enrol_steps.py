"""The kiosk's enrolment steps over HTTP: the refusals name their real reasons (the pixel limit,
the upload limit from the settings), the booking reference is checked at its own first step,
the photo check gives the face's box (geometry only, never pixels), and the consent text comes
in the traveller's language, versioned over every translation, with the language recorded.
"""

from __future__ import annotations

import base64
import json

import pytest
from helpers.kiosk import b64_file

from edge.kiosk import i18n
from edge.kiosk.consent_text import consent_text, text_version
from edge.kiosk.receipt import receipt_figure
from edge.vision.imageio import MAX_PIXELS

BCBP = ("M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100")


def jpeg_header(width: int, height: int) -> bytes:
    """The start of a baseline JPEG declaring `width`x`height` (SOI, APP0, SOF0): enough for
    the header check, which refuses it before a byte is decoded."""
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = (b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big")
            + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01")
    return b"\xff\xd8" + app0 + sof0 + b"\x00" * 64


def version(kiosk, lang: str = "en") -> str:
    return kiosk.client.get(f"/api/consent-text?lang={lang}").json()["version"]


# ---------------------------------------------------------------- the real reasons
@pytest.mark.parametrize("route", ["/api/enrolments/check", "/api/enrolments"])
def test_a_6000x8109_jpeg_is_told_the_pixel_limit(kiosk, route):
    kiosk.login()
    assert MAX_PIXELS < 6000 * 8109
    photo = base64.b64encode(jpeg_header(6000, 8109)).decode()
    body = {"photo": photo}
    if route == "/api/enrolments":
        body |= {"reference": "ABC123", "consent_accepted": True,
                 "consent_version": version(kiosk)}
    r = kiosk.client.post(route, json=body)
    assert r.status_code == 413, r.text
    out = r.json()
    assert out["error"] == "too_many_pixels"
    assert "6000x8109 pixels" in out["message"] and "48.7 megapixels" in out["message"]
    assert "limit of 40 megapixels" in out["message"]
    assert "not a photo the kiosk can read" not in out["message"]
    assert kiosk.store.stats()["active_consents"] == 0


def test_an_18_7_mb_photo_is_told_the_limit_of_the_settings(kiosk):
    kiosk.login()
    assert kiosk.services.settings.kiosk.max_upload_bytes == 8 * 1024 * 1024
    big = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8" + b"\x00" * 18_699_998
                                                        ).decode()
    r = kiosk.client.post("/api/enrolments/check", json={"photo": big})
    assert r.status_code == 413, r.text
    message = r.json()["message"]
    assert r.json()["error"] == "upload_too_large"
    assert "18.7 MB" in message and "limit of 8 MiB (8.4 MB)" in message
    assert "10 MB" not in message
    # what the page checks before it sends anything: the same limit, in the same words
    limits = kiosk.client.get("/api/enrolments/limits").json()
    assert limits == {"max_upload_bytes": 8 * 1024 * 1024, "max_upload_words": "8 MiB (8.4 MB)",
                      "max_photos": 3, "max_pixels": MAX_PIXELS}


def test_a_body_over_the_request_limit_names_the_per_photo_limit(kiosk):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/check", content=b"{" + b" " * (40 * 2**20) + b"}",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["message"] == ("the photos sent are too large: at most 3 photos of "
                                   "8 MiB (8.4 MB) each")
    r = kiosk.client.post("/api/withdrawals", content=b"{" + b" " * (65 * 1024) + b"}",
                          headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "64 KiB" in r.json()["message"]
    assert "photo" not in r.json()["message"]


# ---------------------------------------------------------------- the reference step
@pytest.mark.parametrize("typed", ["12", "hello world!", "AB", "ABC-123!"])
def test_the_reference_step_refuses_what_is_not_a_booking_reference(kiosk, typed):
    kiosk.login()
    rows = kiosk.store.stats()["audit_rows"]
    r = kiosk.client.post("/api/enrolments/reference", json={"reference": typed})
    assert r.status_code == 422
    out = r.json()
    assert out["error"] == "bad_reference"
    assert out["message"].startswith("that is not a booking reference: enter the 6-character")
    assert typed not in out["message"]
    assert kiosk.store.stats()["audit_rows"] == rows  # stores nothing


def test_the_reference_step_accepts_a_reference_or_a_boarding_pass(kiosk):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/reference", json={"reference": "abc123",
                                                              "flight": "XY123"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and r.json()["scope"].startswith("XY0123/")
    assert r.json()["from_boarding_pass"] is False and "ABC123" not in r.text
    r = kiosk.client.post("/api/enrolments/reference", json={"reference": BCBP})
    assert r.json() == {"ok": True, "scope": "AC0834/326", "from_boarding_pass": True}
    r = kiosk.client.post("/api/enrolments/reference", json={"reference": "ABC123",
                                                              "flight": "not a flight"})
    assert r.status_code == 422 and r.json()["error"] == "bad_reference"
    assert kiosk.store.stats()["active_consents"] == 0


def test_the_reference_step_needs_an_agent_and_the_csrf_token(kiosk):
    r = kiosk.client.post("/api/enrolments/reference", json={"reference": "ABC123"})
    assert r.status_code == 401
    kiosk.login("eng1")
    r = kiosk.client.post("/api/enrolments/reference", json={"reference": "ABC123"})
    assert r.status_code == 403


# ---------------------------------------------------------------- the agent's face preview
def test_the_photo_check_gives_the_face_box_and_never_pixels(kiosk, faces_dir):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/check", json={"photo": b64_file(faces_dir / "img1.jpg")})
    out = r.json()
    assert set(out) == {"faces", "ok", "advice", "box", "width", "height"}
    x, y, w, h = out["box"]
    assert x >= 0 and y >= 0 and x + w <= out["width"] + 2 and y + h <= out["height"] + 2
    assert w >= 60 and h >= 60
    assert len(r.content) < 200  # no room for an image or an embedding in the answer


# ---------------------------------------------------------------- the traveller's language
def test_the_consent_text_comes_in_three_languages_with_one_version(kiosk):
    kiosk.login()
    docs = {code: kiosk.client.get(f"/api/consent-text?lang={code}").json()
            for code in ("en", "fr", "de")}
    assert [lang["code"] for lang in docs["en"]["languages"]] == ["en", "de", "fr"]
    assert {lang["label"] for lang in docs["en"]["languages"]} == {"English", "Deutsch",
                                                                   "Français"}
    assert len({d["version"] for d in docs.values()}) == 1
    assert docs["fr"]["language"] == "fr" and "file avec agent" in json.dumps(
        docs["fr"]["sections"], ensure_ascii=False)
    assert "Spur mit Personal" in json.dumps(docs["de"]["sections"], ensure_ascii=False)
    hours = docs["en"]["retention_hours"]
    assert f"{hours} heures" in docs["fr"]["sections"][2]["body"]
    assert f"{hours} Stunden" in docs["de"]["sections"][2]["body"]
    for d in docs.values():
        assert [s["id"] for s in d["sections"]] == [s["id"] for s in docs["en"]["sections"]]
        assert set(d["lanes"]) >= {"granted", "staffed_lane", "wrong_flight"}
    r = kiosk.client.get("/api/consent-text?lang=xx")
    assert r.status_code == 422 and r.json()["error"] == "unknown_language"


def test_every_translation_has_the_keys_and_placeholders_of_english():
    catalogue = i18n.catalogue()
    assert set(catalogue) >= {"en", "fr", "de"}
    english = catalogue["en"]
    for code, data in catalogue.items():
        for part in i18n.PARTS:
            assert set(data[part]) == set(english[part]), (code, part)
            for key, text in data[part].items():
                assert i18n._fields(text) == i18n._fields(english[part][key]), (code, key)
        if code != "en":  # translated, not copied
            same = [k for k in data["consent"] if data["consent"][k] == english["consent"][k]]
            assert same == [], (code, same)
    broken = json.loads(json.dumps(catalogue["fr"]))
    broken["receipt"]["enrolled_until"] = "Valable."  # the placeholder dropped
    with pytest.raises(i18n.TranslationError, match="enrolled_until"):
        i18n._check("fr", broken, english)
    broken["receipt"]["enrolled_until"] = catalogue["fr"]["receipt"]["enrolled_until"]
    i18n._check("fr", broken, english)  # whole again
    del broken["lanes"]["granted"]
    with pytest.raises(i18n.TranslationError, match="lanes"):
        i18n._check("fr", broken, english)


def test_the_version_changes_when_any_translation_changes(monkeypatch):
    before = text_version(86400, 14400, True, "gallery")
    assert before == consent_text(86400, 14400, True, "gallery", "de")["version"]
    changed = json.loads(json.dumps(i18n.catalogue()))
    changed["de"]["lanes"]["granted"] = "Gute Reise!"
    monkeypatch.setattr(i18n, "catalogue", lambda: changed)
    assert text_version(86400, 14400, True, "gallery") != before
    assert consent_text(86400, 14400, True, "gallery", "en")["version"] != before


def test_the_consent_record_says_which_text_and_language(kiosk, faces_dir):
    kiosk.login()
    v = version(kiosk, "fr")
    r = kiosk.client.post("/api/enrolments", json={
        "reference": "ABC123", "consent_accepted": True, "consent_version": v,
        "consent_language": "fr", "photo": b64_file(faces_dir / "img1.jpg")})
    assert r.status_code == 201, r.text
    assert r.json()["message"].startswith("Votre inscription est valable jusqu'au ")
    (row,) = kiosk.store.consent_summary()
    assert row["purpose"] == (f"face boarding at gate {kiosk.services.settings.device.gate_id}; "
                              f"consent text {v} (fr)")
    # a language not offered, or a stale version, stores nothing
    for extra in ({"consent_language": "xx"}, {"consent_language": "it"},
                  {"consent_version": "0" * 16}):
        body = {"reference": "XYZ789", "consent_accepted": True, "consent_version": v,
                "consent_language": "de", "photo": b64_file(faces_dir / "img2.jpg")} | extra
        r = kiosk.client.post("/api/enrolments", json=body)
        assert r.status_code in (409, 422), r.text
    assert len(kiosk.store.consent_summary()) == 1


def test_the_token_receipt_is_printed_in_the_travellers_language():
    words = i18n.words("de")["receipt"]
    fig = receipt_figure("CG1." + "0" * 32 + "." + "A" * 52 + ".AAAAAAAA",
                         valid_until="2026-12-02 20:00", scope="XY123/336", gate="G1",
                         withdrawal_code="ABCD-EFGH-JKLM", words=words)
    texts = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "Ihr Einstiegsschlüssel" in texts and "Gültig bis 2026-12-02 20:00" in texts
    assert "ABCD-EFGH-JKLM" in texts and "Valid until" not in texts
