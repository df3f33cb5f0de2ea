"""HTTP API of the staff kiosk: every route and every refusal, against the real store/engine."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
from helpers.kiosk import PASSWORD, StillCamera, b64_array, b64_file, kiosk_origin, make_env
from structlog.testing import capture_logs

from foundation.settings import Settings

BCBP = ("M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100")


def consent_version(kiosk) -> str:
    return kiosk.client.get("/api/consent-text").json()["version"]


def enrol_body(kiosk, photo: str, reference: str = "ABC123", **extra) -> dict:
    body = {"reference": reference, "consent_accepted": True,
            "consent_version": consent_version(kiosk), "photo": photo}
    body.update(extra)
    return body


def audit_rows(store) -> list[tuple]:
    return store.db.read("SELECT event, actor, subject, reason FROM audit ORDER BY seq")


# ---------------------------------------------------------------- log-in, cookies, sessions
def test_login_sets_strict_httponly_cookie_and_audits(kiosk):
    r = kiosk.client.post("/api/session/login",
                          json={"staff_id": "agent1", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "cg_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie  # no TLS configured
    info = r.json()
    assert info["role"] == "agent" and info["can_enrol"] and not info["can_override"]
    assert len(info["csrf_token"]) >= 32
    assert ("staff_login", "agent1", None, None) in audit_rows(kiosk.store)
    assert kiosk.client.get("/api/session").json()["staff_id"] == "agent1"


def test_cookie_is_secure_when_tls_is_configured(kiosk_store, kiosk_engine, fake_clock, tmp_path):
    settings = Settings.model_validate({"kiosk": {"tls_cert_file": str(tmp_path / "c.pem"),
                                                  "tls_key_file": str(tmp_path / "k.pem")}})
    env = make_env(kiosk_store, kiosk_engine, fake_clock, settings)
    r = env.client.post("/api/session/login", json={"staff_id": "agent1", "password": PASSWORD})
    assert r.status_code == 200
    assert "Secure" in r.headers["set-cookie"]


@pytest.mark.parametrize("name,password", [("agent1", "wrong-password-here"),
                                           ("nobody", PASSWORD)])
def test_bad_login_is_refused_the_same_way(kiosk, name, password):
    r = kiosk.client.post("/api/session/login", json={"staff_id": name, "password": password})
    assert r.status_code == 401
    assert r.json()["error"] == "bad_login"
    assert password not in r.text
    assert "set-cookie" not in r.headers


def test_disabled_account_cannot_log_in(kiosk):
    kiosk.store.staff.set_disabled("agent1", True)
    r = kiosk.client.post("/api/session/login", json={"staff_id": "agent1", "password": PASSWORD})
    assert r.status_code == 401


def test_validation_errors_never_echo_the_password(kiosk):
    r = kiosk.client.post("/api/session/login", json={"staff_id": "", "password": "s3cret-pw!"})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert "s3cret-pw!" not in r.text


def test_validation_errors_never_echo_photos_references_or_unknown_field_names(kiosk):
    """A 422 names the fields, never what was sent: not a value, and not the name of an
    unexpected field (a client can put a photo or a boarding reference in a key, too)."""
    kiosk.login()
    photo = base64.b64encode(b"\xff\xd8\xff\xe0 not really a jpeg, but personal" * 8).decode()
    bodies = [
        {"reference": "ZXQ987", "consent_accepted": "maybe", "consent_version": "v",
         "photo": photo},
        {"reference": "ZXQ987", "consent_accepted": True, "consent_version": "v",
         "photo": photo, photo: 1, "ZXQ987": True},
        {"reference": ["ZXQ987"], "consent_accepted": True, "consent_version": "v",
         "photo": photo, "source": "ZXQ987"},
    ]
    for body in bodies:
        r = kiosk.client.post("/api/enrolments", json=body)
        assert r.status_code == 422 and r.json()["error"] == "invalid_request"
        assert photo[:24] not in r.text and "ZXQ987" not in r.text
        assert all(set(p) == {"field", "problem"} for p in r.json()["problems"])
    r = kiosk.client.post("/api/withdrawals", json={"reference": "ZXQ987", "ZXQ987": 1})
    assert r.status_code == 422 and "ZXQ987" not in r.text
    assert r.json()["problems"] == [{"field": "(unexpected field)", "problem":
                                     "this field is not part of the request: remove it"}]


def test_login_must_be_json(kiosk):
    r = kiosk.client.post("/api/session/login",
                          content=b'{"staff_id": "agent1", "password": "%s"}' % PASSWORD.encode(),
                          headers={"content-type": "text/plain"})
    assert r.status_code == 422  # FastAPI refuses a non-JSON body before the handler runs
    assert "set-cookie" not in r.headers


def test_lock_out_after_repeated_failures_then_recovers(kiosk):
    limit = kiosk.services.settings.kiosk.max_login_failures
    for _ in range(limit):
        r = kiosk.client.post("/api/session/login",
                              json={"staff_id": "agent1", "password": "wrong-password-x"})
        assert r.status_code == 401
    r = kiosk.client.post("/api/session/login", json={"staff_id": "agent1", "password": PASSWORD})
    assert r.status_code == 429
    assert r.json()["error"] == "locked_out"
    assert int(r.headers["retry-after"]) > 0
    kiosk.clock.advance(kiosk.services.settings.kiosk.lockout_s + 1)
    r = kiosk.client.post("/api/session/login", json={"staff_id": "agent1", "password": PASSWORD})
    assert r.status_code == 200


def test_one_client_guessing_many_names_is_throttled(kiosk_store, kiosk_engine, fake_clock):
    settings = Settings.model_validate({"kiosk": {"max_login_failures": 2}})
    env = make_env(kiosk_store, kiosk_engine, fake_clock, settings)
    for i in range(2 * 4):  # per-client limit: 4x the per-name limit
        r = env.client.post("/api/session/login",
                            json={"staff_id": f"guess{i}", "password": "wrong-password-x"})
        assert r.status_code == 401
    r = env.client.post("/api/session/login", json={"staff_id": "sup1", "password": PASSWORD})
    assert r.status_code == 429


def test_disabling_an_account_ends_its_sessions_at_once(kiosk):
    kiosk.login()
    assert kiosk.client.get("/api/board").status_code == 200
    kiosk.store.staff.set_disabled("agent1", True)
    r = kiosk.client.get("/api/board")
    assert r.status_code == 401 and r.json()["error"] == "session_expired"
    kiosk.store.staff.set_disabled("agent1", False)
    assert kiosk.client.get("/api/board").status_code == 401  # that session is gone for good


def test_logging_in_again_replaces_the_old_session(kiosk):
    kiosk.login()
    old = kiosk.client.cookies["cg_session"]
    kiosk.login("sup1")
    assert kiosk.client.cookies["cg_session"] != old
    kiosk.client.cookies.clear()
    kiosk.client.cookies.set("cg_session", old)
    r = kiosk.client.get("/api/board")
    assert r.status_code == 401


def test_expired_session_is_refused(kiosk):
    kiosk.login()
    kiosk.clock.advance(kiosk.services.settings.kiosk.session_ttl_s + 1)
    r = kiosk.client.get("/api/board")
    assert r.status_code == 401
    assert r.json()["error"] == "session_expired"


def test_logout_ends_the_session(kiosk):
    kiosk.login()
    r = kiosk.client.post("/api/session/logout")
    assert r.status_code == 204
    assert kiosk.client.get("/api/board").status_code == 401
    assert ("staff_logout", "agent1", None, None) in audit_rows(kiosk.store)


def test_unknown_route_is_404_json(kiosk):
    r = kiosk.client.get("/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_index_page_and_static_assets_are_served_with_a_strict_csp(kiosk):
    r = kiosk.client.get("/")
    assert r.status_code == 200 and 'id="login-form"' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert kiosk.client.get("/static/kiosk.js").status_code == 200
    assert kiosk.client.get("/api/health").json() == {"status": "ok"}


# ------------------------------------------------------------------------- CSRF and roles
def test_mutation_without_csrf_token_is_refused(kiosk):
    kiosk.login()
    del kiosk.client.headers["X-CSRF-Token"]
    r = kiosk.client.post("/api/enrolments/refusal")
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    r = kiosk.client.post("/api/enrolments/refusal", headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403 and r.json()["error"] == "csrf"


def test_cross_origin_mutation_is_refused_even_with_token(kiosk):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/refusal", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    # an Origin that merely matches the request's own Host header is not the kiosk's
    r = kiosk.client.post("/api/enrolments/refusal", headers={"Origin": "http://testserver"})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    own = kiosk_origin(kiosk.services.settings)  # the kiosk's configured origin (TestClient)
    r = kiosk.client.post("/api/enrolments/refusal", headers={"Origin": own})
    assert r.status_code == 200


def test_engineer_may_view_but_not_enrol_or_withdraw(kiosk, faces_dir):
    kiosk.login("eng1")
    assert kiosk.client.get("/api/board").status_code == 200
    r = kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, b64_file(faces_dir /
                                                                             "img1.jpg")))
    assert r.status_code == 403 and r.json()["error"] == "wrong_role"
    r = kiosk.client.post("/api/withdrawals", json={"reference": "ABC123"})
    assert r.status_code == 403
    assert kiosk.store.stats()["active_consents"] == 0


def test_agent_may_not_override_a_lane(kiosk):
    kiosk.login("agent1")
    r = kiosk.client.post("/api/lanes/A/override", json={"action": "open", "reason": "test"})
    assert r.status_code == 403 and r.json()["error"] == "wrong_role"
    assert kiosk.gate.calls == []


# ------------------------------------------------------------------------------- consent
def test_consent_text_covers_purpose_storage_retention_withdrawal_and_alternative(kiosk):
    kiosk.login()
    text = kiosk.client.get("/api/consent-text").json()
    ids = [s["id"] for s in text["sections"]]
    assert ids == ["purpose", "stored", "retention", "withdraw", "alternative"]
    body = " ".join(s["body"] for s in text["sections"]).lower()
    assert "staffed lane" in body and "withdraw" in body and "hours" in body
    assert len(text["version"]) == 16


def test_photo_check_gives_feedback_and_stores_nothing(kiosk, faces_dir):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/check", json={"photo": b64_file(faces_dir / "img1.jpg")})
    assert r.status_code == 200, r.text
    assert without_geometry(r.json()) == {"faces": 1, "ok": True, "advice": []}
    assert kiosk.store.stats()["active_consents"] == 0


def without_geometry(check: dict) -> dict:
    """A photo check without the face box and photo size (the page's preview; no pixels)."""
    rest = dict(check)
    box, width, height = rest.pop("box"), rest.pop("width"), rest.pop("height")
    assert isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0
    assert len(box) == 4 and all(isinstance(v, int) for v in box)
    assert 0 <= box[0] < width and 0 <= box[1] < height and box[2] > 0 and box[3] > 0
    return rest


def small_face(faces_dir) -> np.ndarray:
    """img1 scaled so the face is about 53 px wide (under the 60 px minimum)."""
    image = cv2.imread(str(faces_dir / "img1.jpg"))
    return cv2.resize(image, None, fx=0.09, fy=0.09, interpolation=cv2.INTER_AREA)


def test_photo_check_says_move_closer_for_a_small_face(kiosk, faces_dir):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/check", json={"photo": b64_array(small_face(faces_dir))})
    assert r.status_code == 200
    assert without_geometry(r.json()) == {"faces": 1, "ok": False, "advice": ["move closer"]}


def test_photo_check_says_hold_still_for_a_blurred_photo(kiosk, faces_dir):
    kiosk.login()
    blurred = cv2.GaussianBlur(cv2.imread(str(faces_dir / "img1.jpg")), (0, 0), 15)
    r = kiosk.client.post("/api/enrolments/check", json={"photo": b64_array(blurred, ".jpg")})
    assert r.status_code == 200
    assert r.json()["ok"] is False and "hold still" in r.json()["advice"]


def test_enrol_refuses_a_poor_photo_with_advice_and_stores_nothing(kiosk, faces_dir):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments", json=enrol_body(kiosk,
                                                             b64_array(small_face(faces_dir))))
    assert r.status_code == 422
    assert r.json()["error"] == "poor_quality" and "move closer" in r.json()["message"]
    assert kiosk.store.stats()["active_consents"] == 0
    assert kiosk.store.db.read("SELECT count(*) FROM consents")[0][0] == 0


@pytest.mark.parametrize("photo,code", [
    (base64.b64encode(b"this is not an image at all").decode(), "bad_image"),
    ("@@not base64@@", "bad_image"),
    ("", "bad_image"),
])
def test_bad_images_are_refused(kiosk, photo, code):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/check", json={"photo": photo})
    assert r.status_code == 422 and r.json()["error"] == code
    r = kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, photo))
    assert r.status_code == 422 and r.json()["error"] == code
    assert kiosk.store.stats()["active_consents"] == 0


def test_photo_without_a_face_is_refused(kiosk):
    kiosk.login()
    blank = np.full((480, 640, 3), 200, np.uint8)
    r = kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, b64_array(blank)))
    assert r.status_code == 422 and r.json()["error"] == "no_face"
    assert kiosk.store.stats()["active_consents"] == 0


def test_photo_with_two_people_is_refused(kiosk, faces_dir):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/check", json={"photo": b64_file(faces_dir /
                                                                            "couple.jpg")})
    assert r.status_code == 422 and r.json()["error"] == "multiple_faces"


def test_enrol_success_returns_receipt_and_no_image(kiosk, faces_dir):
    kiosk.login()
    with capture_logs() as logs:
        r = kiosk.client.post("/api/enrolments",
                              json=enrol_body(kiosk, b64_file(faces_dir / "img1.jpg")))
    assert r.status_code == 201, r.text
    receipt = r.json()
    assert set(receipt) == {"withdrawal_code", "expires_at", "expires_at_iso", "scope", "message"}
    assert len(receipt["withdrawal_code"].replace("-", "")) == 12
    now = kiosk.clock.now()
    assert now < receipt["expires_at"] <= now + kiosk.services.settings.kiosk.consent_ttl_s
    stats = kiosk.store.stats()
    assert stats["active_consents"] == 1 and stats["templates"] == 1
    assert ("enrolled" in [row[0] for row in audit_rows(kiosk.store)])
    assert all(row[1] == "agent1" for row in audit_rows(kiosk.store)
               if row[0] in ("consent_granted", "enrolled"))
    assert kiosk.board.snapshot()["counts"]["enrolled"] == 1
    # no image, embedding or reference anywhere in the logs
    flat = repr(logs)
    assert "ABC123" not in flat and "ndarray" not in flat and "base64" not in flat


def test_enrol_from_boarding_pass_barcode_scopes_to_the_flight(kiosk, faces_dir):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments",
                          json=enrol_body(kiosk, b64_file(faces_dir / "img2.jpg"), BCBP))
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "AC0834/326"
    assert "DESMARAIS" not in r.text
    # the booking reference inside the barcode withdraws it
    r = kiosk.client.post("/api/withdrawals", json={"reference": "ABC123"})
    assert r.status_code == 200


@pytest.mark.parametrize("reference", ["AB", "ABC 123 456 789", "M1TOO/SHORT", "\x00ABC123"])
def test_bad_reference_is_refused_before_anything_is_stored(kiosk, faces_dir, reference):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments",
                          json=enrol_body(kiosk, b64_file(faces_dir / "img1.jpg"), reference))
    assert r.status_code == 422 and r.json()["error"] == "bad_reference"
    assert kiosk.store.stats()["active_consents"] == 0


def test_enrol_without_acceptance_or_with_old_text_is_refused(kiosk, faces_dir):
    kiosk.login()
    photo = b64_file(faces_dir / "img1.jpg")
    r = kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, photo,
                                                             consent_accepted=False))
    assert r.status_code == 422 and r.json()["error"] == "consent_not_given"
    r = kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, photo,
                                                             consent_version="0" * 16))
    assert r.status_code == 409 and r.json()["error"] == "consent_text_changed"
    assert kiosk.store.stats()["active_consents"] == 0


def test_refusal_is_one_tap_and_stores_nothing(kiosk):
    kiosk.login()
    before = len(audit_rows(kiosk.store))
    r = kiosk.client.post("/api/enrolments/refusal")
    assert r.status_code == 200 and r.json()["stored"] is False
    assert kiosk.store.stats()["active_consents"] == 0
    assert len(audit_rows(kiosk.store)) == before
    assert kiosk.board.snapshot()["counts"]["refused"] == 1


# --------------------------------------------------------------------------- oversize upload
def _small_limit_env(kiosk_store, kiosk_engine, fake_clock):
    settings = Settings.model_validate({"kiosk": {"max_upload_bytes": 4096}})
    env = make_env(kiosk_store, kiosk_engine, fake_clock, settings)
    env.login()
    return env


def test_oversize_upload_is_rejected_before_decoding(kiosk_store, kiosk_engine, fake_clock,
                                                     faces_dir, monkeypatch):
    import edge.kiosk.photo as photo_mod

    def must_not_decode(*a, **k):
        raise AssertionError("an oversize upload reached the decoder")

    monkeypatch.setattr(photo_mod, "decode_image", must_not_decode)
    monkeypatch.setattr(photo_mod, "photo_bytes", must_not_decode)
    env = _small_limit_env(kiosk_store, kiosk_engine, fake_clock)
    big = b64_file(faces_dir / "img1.jpg")  # hundreds of KB, far over 4 KB
    # declared Content-Length over the limit: refused before the body is read
    r = env.client.post("/api/enrolments/check", json={"photo": big})
    assert r.status_code == 413 and r.json()["error"] == "upload_too_large"
    r = env.client.post("/api/enrolments", json=enrol_body(env, big))
    assert r.status_code == 413
    # chunked body with no Content-Length: refused while it streams in
    payload = b'{"photo": "' + big.encode() + b'"}'

    def chunks():
        for i in range(0, len(payload), 1024):
            yield payload[i:i + 1024]

    r = env.client.post("/api/enrolments/check", content=chunks(),
                        headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert env.store.stats()["active_consents"] == 0


def test_photo_over_the_limit_inside_an_allowed_body_is_rejected(kiosk_store, kiosk_engine,
                                                                  fake_clock):
    env = _small_limit_env(kiosk_store, kiosk_engine, fake_clock)
    photo = base64.b64encode(b"\xff" * 4097).decode()  # decodes to 1 byte over the limit
    r = env.client.post("/api/enrolments/check", json={"photo": photo})
    assert r.status_code == 413


def test_other_routes_refuse_big_bodies(kiosk):
    kiosk.login()
    r = kiosk.client.post("/api/withdrawals", json={"reference": "A" * 200_000})
    assert r.status_code == 413


# ------------------------------------------------------------------------------- camera
def test_camera_capture_when_no_camera_is_configured(kiosk):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments/check", json={"source": "camera"})
    assert r.status_code == 409 and r.json()["error"] == "no_camera"


def test_enrol_from_the_kiosk_camera(kiosk_store, kiosk_engine, fake_clock, faces_dir):
    camera = StillCamera(None)
    env = make_env(kiosk_store, kiosk_engine, fake_clock, camera=camera)
    info = env.login()
    assert info["camera"] is True
    r = env.client.post("/api/enrolments/check", json={"source": "camera"})
    assert r.status_code == 409  # no picture yet
    camera.image = cv2.imread(str(faces_dir / "img3.jpg"))
    r = env.client.post("/api/enrolments/check", json={"source": "camera"})
    assert r.status_code == 200 and r.json()["ok"] is True
    body = enrol_body(env, "", source="camera")
    del body["photo"]
    r = env.client.post("/api/enrolments", json=body)
    assert r.status_code == 201, r.text


# ---------------------------------------------------------------------------- withdrawal
def test_withdraw_by_reference_is_immediate(kiosk, faces_dir):
    kiosk.login()
    assert kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, b64_file(faces_dir / "img1.jpg"))).status_code == 201
    assert len(kiosk.store.active_templates()) == 1
    r = kiosk.client.post("/api/withdrawals", json={"reference": " abc123 "})
    assert r.status_code == 200 and r.json()["withdrawn"] is True
    assert kiosk.store.active_templates() == []
    assert kiosk.board.snapshot()["counts"]["withdrawn"] == 1
    assert any(row[0] == "withdrawn" and row[1] == "agent1" for row in audit_rows(kiosk.store))
    r = kiosk.client.post("/api/withdrawals", json={"reference": "ABC123"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_withdraw_by_code(kiosk, faces_dir):
    kiosk.login()
    code = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, b64_file(faces_dir / "img1.jpg"))).json()["withdrawal_code"]
    r = kiosk.client.post("/api/withdrawals", json={"code": code.lower(), "by": "agent"})
    assert r.status_code == 200
    assert kiosk.store.active_templates() == []


@pytest.mark.parametrize("body,status,code", [
    ({}, 422, "invalid_request"),
    ({"reference": "ABC123", "code": "AAAA-BBBB-CCCC"}, 422, "invalid_request"),
    ({"reference": "!!"}, 422, "bad_reference"),
    ({"code": "ZZZZ-ZZZZ-ZZZZ"}, 404, "not_found"),
    ({"reference": "ABC123", "by": "someone"}, 422, "invalid_request"),
])
def test_withdraw_errors(kiosk, body, status, code):
    kiosk.login()
    r = kiosk.client.post("/api/withdrawals", json=body)
    assert r.status_code == status and r.json()["error"] == code


# ------------------------------------------------------------------------ listings, board
def test_consent_summary_shows_counts_and_expiry_only(kiosk, faces_dir):
    kiosk.login()
    kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, b64_file(faces_dir /
                                                                          "img1.jpg")))
    kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, b64_file(faces_dir / "img2.jpg"),
                                                         "XYZ789"))
    kiosk.client.post("/api/withdrawals", json={"reference": "XYZ789"})
    r = kiosk.client.get("/api/consents/summary")
    data = r.json()
    assert data["active"] == 1 and data["withdrawn"] == 1 and data["templates"] == 1
    assert data["next_expiry_at"] > kiosk.clock.now()
    text = r.text
    for consent in kiosk.store.consent_summary():
        assert consent["consent_id"] not in text
    assert "ABC123" not in text and "XYZ789" not in text


def test_board_snapshot(kiosk):
    kiosk.login("eng1")
    kiosk.board.publish_state("A", "granted", "boarding")
    kiosk.board.publish_alert("B", "refer", "refer for secondary screening")
    snap = kiosk.client.get("/api/board").json()
    assert [lane["state"] for lane in snap["lanes"]] == ["granted", "idle"]
    assert snap["alerts"][-1]["message"] == "refer for secondary screening"


def test_supervisor_override_and_reset_go_through_the_gate_and_audit(kiosk):
    kiosk.login("sup1")
    r = kiosk.client.post("/api/lanes/A/override", json={"action": "open",
                                                         "reason": "wheelchair user"})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    r = kiosk.client.post("/api/lanes/B/reset", json={"reason": "alarm checked"})
    assert r.status_code == 200
    assert kiosk.gate.calls == [("override", "A", "open", "wheelchair user", "sup1"),
                                ("reset", "B", "alarm checked", "sup1")]
    rows = audit_rows(kiosk.store)
    assert ("lane_override_open", "sup1", "A", "wheelchair user") in rows
    assert ("lane_reset", "sup1", "B", "alarm checked") in rows
    snap = kiosk.board.snapshot()
    assert snap["counts"]["override"] == 1
    assert [a["kind"] for a in snap["alerts"]] == ["override", "reset"]


@pytest.mark.parametrize("path,body,status,code", [
    ("/api/lanes/Z/override", {"action": "open", "reason": "test"}, 404, "unknown_lane"),
    ("/api/lanes/A/override", {"action": "open"}, 422, "invalid_request"),
    ("/api/lanes/A/override", {"action": "explode", "reason": "test"}, 422, "invalid_request"),
    ("/api/lanes/A/reset", {"reason": ""}, 422, "invalid_request"),
    ("/api/lanes/bad%20lane/reset", {"reason": "test"}, 422, "invalid_request"),
])
def test_lane_action_errors(kiosk, path, body, status, code):
    kiosk.login("sup1")
    r = kiosk.client.post(path, json=body)
    assert r.status_code == status and r.json()["error"] == code
    assert kiosk.gate.calls == []


def test_gate_refusal_unavailable_and_absent(kiosk, kiosk_store, kiosk_engine, fake_clock):
    kiosk.login("sup1")
    kiosk.gate.refuse = True
    r = kiosk.client.post("/api/lanes/A/override", json={"action": "open", "reason": "test"})
    assert r.status_code == 409 and r.json()["error"] == "gate_refused"
    kiosk.gate.refuse, kiosk.gate.unavailable = False, True
    r = kiosk.client.post("/api/lanes/A/reset", json={"reason": "test"})
    assert r.status_code == 503 and r.json()["error"] == "gate_unavailable"
    assert not any(row[0].startswith("lane_") for row in audit_rows(kiosk.store))
    env = make_env(kiosk_store, kiosk_engine, fake_clock, with_gate=False)
    env.login("sup1")
    r = env.client.post("/api/lanes/A/override", json={"action": "close", "reason": "test"})
    assert r.status_code == 409 and r.json()["error"] == "no_gate"
