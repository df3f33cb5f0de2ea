"""Enrolment with consent: the consent text, photo checks, enrolment, and one-tap refusal.

Photos arrive as base64 in JSON (never multipart, whose parser spools large files to disk) and
the whole body is size-checked before it is read (see `limits.py`). Nothing is stored until
the traveller has accepted the current consent text and the photo has passed the quality gate;
a refusal stores nothing at all. No response ever contains an image or an embedding.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
import structlog
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from edge.kiosk import photo
from edge.kiosk.consent_text import ConsentTextDoc, consent_text
from edge.kiosk.deps import (
    AgentDep,
    BoardDep,
    CameraDep,
    EngineDep,
    ServicesDep,
    StoreDep,
    ViewerDep,
)
from edge.kiosk.errors import BadImageError, ConsentNotGivenError, StaleConsentTextError
from edge.kiosk.references import parse_reference
from edge.kiosk.store_ops import grant_and_enrol

log = structlog.get_logger(__name__)
router = APIRouter(tags=["enrolment"])

MAX_PHOTO_B64 = photo.b64_limit(64 * 1024 * 1024)  # schema bound; settings bound is tighter


class ConsentSection(BaseModel):
    id: str
    title: str
    body: str


class ConsentText(BaseModel):
    version: str
    title: str
    sections: list[ConsentSection]
    retention_hours: int


class PhotoIn(BaseModel):
    """A photo: `source="upload"` with `photo` (base64 or data URL), or the kiosk camera."""

    model_config = ConfigDict(extra="forbid")
    source: Literal["upload", "camera"] = "upload"
    photo: str | None = Field(None, max_length=MAX_PHOTO_B64,
                              description="JPEG/PNG as base64 or a data: URL (upload only)")


class EnrolmentIn(PhotoIn):
    reference: str = Field(min_length=1, max_length=512,
                           description="booking reference, or BCBP barcode text")
    consent_accepted: bool = Field(description="the traveller accepted on screen")
    consent_version: str = Field(min_length=1, max_length=64,
                                 description="version of the consent text the traveller read")


class PhotoCheck(BaseModel):
    faces: int
    ok: bool
    advice: list[str]


class Receipt(BaseModel):
    withdrawal_code: str
    expires_at: float
    expires_at_iso: str
    scope: str
    message: str


class Refusal(BaseModel):
    stored: bool
    message: str


def _text(services: ServicesDep) -> ConsentTextDoc:
    s = services.settings
    return consent_text(s.consent.max_retention_s, s.kiosk.consent_ttl_s,
                        s.consent.delete_on_boarding)


def _image(body: PhotoIn, services: ServicesDep, camera: CameraDep) -> np.ndarray:
    if body.source == "camera":
        return photo.camera_frame(camera)
    if not body.photo:
        raise BadImageError("no photo was sent: choose a photo or use the camera")
    data = photo.photo_bytes(body.photo, services.settings.kiosk.max_upload_bytes)
    return photo.decode_photo(data)


@router.get("/api/consent-text", response_model=ConsentText)
def get_consent_text(_: ViewerDep, services: ServicesDep) -> ConsentTextDoc:
    """The consent text to show the traveller (purpose, storage, retention, withdrawal,
    alternative) and its version, which the enrolment must echo."""
    return _text(services)


@router.post("/api/enrolments/check", response_model=PhotoCheck)
def check_photo(body: PhotoIn, _: AgentDep, services: ServicesDep, engine: EngineDep,
                camera: CameraDep) -> PhotoCheck:
    """Quality feedback before enrolling ("move closer", "face the camera"); stores nothing."""
    image = _image(body, services, camera)
    result = photo.assess(engine, image, services.settings.vision.min_face_px)
    return PhotoCheck(**result.feedback())


@router.post("/api/enrolments", response_model=Receipt, status_code=201)
def enrol(body: EnrolmentIn, session: AgentDep, services: ServicesDep, engine: EngineDep,
          store: StoreDep, board: BoardDep, camera: CameraDep) -> Receipt:
    """Enrol a traveller who accepted the consent text; returns the receipt (expiry and the
    withdrawal code, shown once)."""
    if not body.consent_accepted:
        raise ConsentNotGivenError("the traveller has not accepted: tap 'I agree' first, or "
                                   "'No thanks' to use the staffed lane")
    if body.consent_version != _text(services)["version"]:
        raise StaleConsentTextError("the consent text has changed: show the traveller the "
                                    "current text and ask again")
    ref = parse_reference(body.reference)
    image = _image(body, services, camera)
    embedding = photo.enrolment_embedding(engine, image, services.settings.vision.min_face_px)
    del image
    s = services.settings
    now = services.clock.now()
    scope = ref.scope or f"{s.device.gate_id}/{dt.datetime.fromtimestamp(now).date():%Y-%m-%d}"
    consent, enrolment = grant_and_enrol(
        store, reference=ref.booking_ref, purpose=f"face boarding at gate {s.device.gate_id}",
        scope=scope, expires_at=now + s.kiosk.consent_ttl_s, embedding=embedding,
        model_name=engine.embedder_name, actor=session.staff_id)
    del embedding
    board.record_count("enrolled")
    log.info("kiosk_enrolled", consent_id=consent.consent_id)
    expires = float(min(consent.expires_at, enrolment.expires_at))
    when = dt.datetime.fromtimestamp(expires).astimezone()
    return Receipt(withdrawal_code=consent.withdrawal_code, expires_at=expires,
                   expires_at_iso=when.isoformat(timespec="minutes"), scope=scope,
                   message=f"You are enrolled until {when:%H:%M} on {when:%d %b}. Keep the "
                           "withdrawal code to withdraw at any time.")


@router.post("/api/enrolments/refusal", response_model=Refusal)
def refuse(_: AgentDep, board: BoardDep) -> Refusal:
    """The traveller said no: nothing is stored; they use the staffed lane."""
    board.record_count("refused")
    log.info("kiosk_consent_refused")
    return Refusal(stored=False, message="Nothing was stored. Please use the staffed lane.")
