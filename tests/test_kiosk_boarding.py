"""Kiosk API for the flight at the gate and better enrolments (issue 14): now boarding (set by
a supervisor from the enrolments' flights or typed, audited; from the schedule file; shown on
the board, "no flight set" otherwise), the scope a typed reference gets, enrolment from up to
3 photos or several kiosk camera frames (their mean), and one consent per reference and
flight."""

from __future__ import annotations

import datetime as dt
import warnings

import cv2
import numpy as np
import pytest
from helpers.kiosk import (
    KioskEnv,
    RecordingGate,
    StillCamera,
    b64_file,
    kiosk_origin,
    make_env,
)

from edge.consent.boarding import Boarding, flight_scope, parse_schedule
from edge.kiosk.app import create_app
from edge.kiosk.board import LaneBoard
from edge.kiosk.services import KioskServices
from foundation.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BCBP = ("M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100")


def enrol_body(kiosk, reference: str = "ABC123", **extra) -> dict:
    version = kiosk.client.get("/api/consent-text").json()["version"]
    return {"reference": reference, "consent_accepted": True, "consent_version": version,
            **extra}


def audit_rows(store) -> list[tuple]:
    return store.db.read("SELECT event, actor, subject, reason FROM audit ORDER BY seq")


def today(kiosk) -> dt.date:
    return dt.datetime.fromtimestamp(kiosk.clock.now()).date()


# ---------------------------------------------------------------------------- now boarding
def test_with_nothing_set_the_board_says_no_flight_is_set(kiosk):
    kiosk.login("eng1")
    snap = kiosk.client.get("/api/board").json()
    assert snap["boarding"]["source"] == "none" and snap["boarding"]["flights"] == []
    assert "no flight set" in snap["boarding"]["message"]
    r = kiosk.client.get("/api/boarding")
    assert r.status_code == 200 and r.json()["choices"] == []
    assert kiosk.services.boarding.scopes() is None  # every flight boards


def test_a_supervisor_sets_now_boarding_and_it_is_audited_and_shown(kiosk, faces_dir):
    kiosk.login()
    assert kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, BCBP, photo=b64_file(faces_dir / "img2.jpg"))).status_code == 201
    r = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, "XYZ789", flight="xy123", photo=b64_file(faces_dir / "img3.jpg")))
    assert r.status_code == 201, r.text
    typed = flight_scope("XY123", today(kiosk))
    assert r.json()["scope"] == typed
    choices = kiosk.client.get("/api/boarding").json()["choices"]
    assert [(c["scope"], c["travellers"]) for c in choices] == [("AC0834/326", 1), (typed, 1)]
    assert choices[0]["flight"].startswith("AC0834 ")
    # an agent may not set it
    r = kiosk.client.put("/api/boarding", json={"flights": ["AC0834/326"]})
    assert r.status_code == 403 and r.json()["error"] == "wrong_role"
    kiosk.login("sup1")
    r = kiosk.client.put("/api/boarding", json={"flights": ["AC0834/326"]})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "supervisor" and r.json()["scopes"] == ["AC0834/326"]
    assert kiosk.services.boarding.scopes() == {"AC0834/326"}
    assert ("boarding_set", "sup1", None, "AC0834/326") in audit_rows(kiosk.store)
    board = kiosk.client.get("/api/board").json()["boarding"]
    assert board["source"] == "supervisor" and board["flights"][0].startswith("AC0834 ")
    assert board["message"].startswith("now boarding AC0834")
    # typed, for a day
    r = kiosk.client.put("/api/boarding", json={"flights": ["ZZ 456"], "date": "2027-03-01"})
    assert r.status_code == 200 and r.json()["scopes"] == ["ZZ0456/060"]
    # cleared: every flight again
    r = kiosk.client.delete("/api/boarding")
    assert r.status_code == 200 and r.json()["source"] == "none"
    assert kiosk.services.boarding.scopes() is None
    assert any(row[0] == "boarding_cleared" and row[1] == "sup1"
               for row in audit_rows(kiosk.store))


@pytest.mark.parametrize("body,status,code", [
    ({"flights": ["NOT A FLIGHT"]}, 422, "bad_flight"),
    ({"flights": []}, 422, "invalid_request"),
    ({"flights": [f"XY{i}" for i in range(9)]}, 422, "invalid_request"),
    ({"flights": ["XY123"], "gate": "B"}, 422, "invalid_request"),
])
def test_bad_boarding_choices_are_refused(kiosk, body, status, code):
    kiosk.login("sup1")
    r = kiosk.client.put("/api/boarding", json=body)
    assert r.status_code == status and r.json()["error"] == code
    assert kiosk.services.boarding.scopes() is None
    assert not any(row[0] == "boarding_set" for row in audit_rows(kiosk.store))


def test_the_schedule_file_sets_what_boards_when(kiosk_store, kiosk_engine, fake_clock):
    start = dt.datetime.fromtimestamp(fake_clock.now())
    schedule = parse_schedule(
        (f"flight,start,end\nXY123,{start:%Y-%m-%dT%H:%M},"
         f"{start + dt.timedelta(hours=1):%Y-%m-%dT%H:%M}\n").encode(), "csv")
    settings = Settings()
    services = KioskServices(settings=settings, clock=fake_clock, store=kiosk_store,
                             engine=kiosk_engine, board=LaneBoard(["A"], fake_clock),
                             gate=RecordingGate(), boarding=Boarding(fake_clock, schedule))
    with TestClient(create_app(services), headers={"Origin": kiosk_origin(settings)}) as client:
        env = KioskEnv(services, client, services.gate, fake_clock)  # type: ignore[arg-type]
        env.login("eng1")
        info = client.get("/api/boarding").json()
        assert info["source"] == "schedule" and info["scopes"] == [schedule[0].scope]
        assert client.get("/api/board").json()["boarding"]["source"] == "schedule"
        fake_clock.advance(3601)
        services.boarding.poll()  # the daemon's loop polls; the board hears of the change
        assert client.get("/api/boarding").json()["source"] == "none"
        assert client.get("/api/board").json()["boarding"]["source"] == "none"


def test_a_typed_reference_boards_the_flight_boarding_now(kiosk, faces_dir):
    kiosk.services.boarding.set_scopes([flight_scope("XY123", today(kiosk))])
    kiosk.login()
    r = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, photo=b64_file(faces_dir / "img1.jpg")))
    assert r.status_code == 201 and r.json()["scope"] == flight_scope("XY123", today(kiosk))
    r = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, "XYZ789", flight="12345678", photo=b64_file(faces_dir / "img3.jpg")))
    assert r.status_code == 422 and r.json()["error"] == "bad_reference"


# ------------------------------------------------------------------- better enrolments
def test_enrol_from_three_photos_stores_their_mean(kiosk, kiosk_engine, faces_dir):
    kiosk.login()
    files = ["img1.jpg", "img2.jpg", "img4.jpg"]  # one person, three photos
    r = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, photos=[b64_file(faces_dir / f) for f in files]))
    assert r.status_code == 201, r.text
    (template,) = kiosk.store.active_templates()
    vectors = []
    for f in files:
        image = cv2.imread(str(faces_dir / f))
        vectors.append(kiosk_engine.embed(image, kiosk_engine.detect(image)[:1])[0])
    mean = np.mean(vectors, axis=0)
    assert float(template.vector @ (mean / np.linalg.norm(mean))) > 0.999
    assert ("enrolled", "agent1") in [row[:2] for row in audit_rows(kiosk.store)]


def test_photos_of_different_people_are_refused(kiosk, faces_dir):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, photos=[b64_file(faces_dir / "img1.jpg"), b64_file(faces_dir / "img3.jpg")]))
    assert r.status_code == 422 and r.json()["error"] == "different_people"
    assert kiosk.store.db.read("SELECT count(*) FROM consents")[0][0] == 0


@pytest.mark.parametrize("extra,code", [
    ({"photos": ["x"] * 4}, "invalid_request"),
    ({"photos": []}, "invalid_request"),
    ({"photos": ["x"], "photo": "x"}, "bad_image"),
    ({"source": "camera", "frames": 4}, "invalid_request"),
])
def test_bad_photo_lists_are_refused(kiosk, extra, code):
    kiosk.login()
    r = kiosk.client.post("/api/enrolments", json=enrol_body(kiosk, **extra))
    assert r.status_code == 422 and r.json()["error"] == code
    assert kiosk.store.db.read("SELECT count(*) FROM consents")[0][0] == 0


def test_enrol_from_several_kiosk_camera_frames(kiosk_store, kiosk_engine, fake_clock,
                                                faces_dir):
    camera = StillCamera(cv2.imread(str(faces_dir / "img3.jpg")))
    env = make_env(kiosk_store, kiosk_engine, fake_clock, camera=camera)
    env.login()
    r = env.client.post("/api/enrolments", json=enrol_body(env, source="camera", frames=2))
    assert r.status_code == 201, r.text
    (template,) = env.store.active_templates()
    image = camera.image
    single = kiosk_engine.embed(image, kiosk_engine.detect(image)[:1])[0]
    assert float(template.vector @ single) > 0.999  # the mean of identical frames
    camera.image = None
    r = env.client.post("/api/enrolments", json=enrol_body(env, "XYZ789", source="camera"))
    assert r.status_code == 409 and r.json()["error"] == "no_camera"


def test_enrolling_a_reference_again_for_the_flight_replaces_the_first(kiosk, faces_dir):
    kiosk.login()
    first = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, BCBP, photo=b64_file(faces_dir / "img1.jpg")))
    again = kiosk.client.post("/api/enrolments", json=enrol_body(
        kiosk, BCBP, photo=b64_file(faces_dir / "img3.jpg")))  # someone else, same booking
    assert first.status_code == 201 and again.status_code == 201
    stats = kiosk.store.stats()
    assert stats["active_consents"] == 1 and stats["templates"] == 1
    assert any(row[0] == "consent_replaced" and row[1] == "agent1"
               for row in audit_rows(kiosk.store))
    r = kiosk.client.post("/api/withdrawals", json={"code": first.json()["withdrawal_code"]})
    assert r.status_code == 404  # the first receipt's code went with its consent
