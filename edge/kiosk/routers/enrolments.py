"""Enrolment with consent: the consent text, photo checks, enrolment, and one-tap refusal.

Photos arrive as base64 in JSON (never multipart, whose parser spools large files to disk) and
the whole body is size-checked before it is read (see `limits.py`). Nothing is stored until
the traveller has accepted the current consent text and the photo has passed the quality gate;
a refusal stores nothing at all. No response ever contains an image or an embedding.

On a token or both gate (settings matching.mode) a traveller can enrol with their own key: the
template is sealed under a fresh key (edge.consent.sealed) and the receipt, the only response
that ever carries it, gives the token as text, a QR code and a printable PDF (no-store).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import numpy as np
import structlog
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.consent.boarding import BoardingError, flight_scope
from edge.consent.token_format import PassengerKey
from edge.kiosk import photo
from edge.kiosk.consent_text import ConsentTextDoc, consent_text
from edge.kiosk.deps import (
    AgentDep,
    BoardDep,
    BoardingDep,
    CameraDep,
    EngineDep,
    ServicesDep,
    StoreDep,
    ViewerDep,
)
from edge.kiosk.errors import (
    BadImageError,
    BadReferenceError,
    ConsentNotGivenError,
    MatchingChoiceError,
    StaleConsentTextError,
)
from edge.kiosk.photo import MAX_PHOTOS
from edge.kiosk.receipt import qr_svg_data_uri, receipt_pdf_b64
from edge.kiosk.references import parse_reference
from edge.kiosk.store_ops import grant_and_enrol, sealing

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


class EnrolmentPhotos(PhotoIn):
    """Enrolment images: `photo` or up to 3 `photos` (upload), or `frames` camera frames;
    the traveller is enrolled with their mean."""

    photos: list[Annotated[str, Field(max_length=MAX_PHOTO_B64)]] | None = Field(
        None, min_length=1, max_length=MAX_PHOTOS,
        description="1-3 photos of the same traveller (upload only, instead of `photo`)")
    frames: int = Field(MAX_PHOTOS, ge=1, le=MAX_PHOTOS,
                        description="camera: good frames taken and averaged")


class EnrolmentIn(EnrolmentPhotos):
    reference: str = Field(min_length=1, max_length=512,
                           description="booking reference, or BCBP barcode text")
    flight: str | None = Field(None, min_length=2, max_length=16,
                               description="flight number for a typed reference, e.g. XY123 "
                                           "(default: the flight boarding now)")
    consent_accepted: bool = Field(description="the traveller accepted on screen")
    consent_version: str = Field(min_length=1, max_length=64,
                                 description="version of the consent text the traveller read")
    matching: Literal["gallery", "token"] | None = Field(
        None, description="gallery: face only; token: face and the traveller's own key (a QR "
                          "code on the receipt). Default: the gate's mode (a `both` gate "
                          "needs the traveller's choice)")


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
    # token enrolments only (left out otherwise): shown once, kept nowhere
    matching: Literal["token"] | None = None
    token: str | None = Field(None, description="the traveller's key: their only copy")
    token_qr_svg: str | None = Field(None, description="the token's QR code (SVG data URI)")
    receipt_pdf: str | None = Field(None, description="printable receipt (PDF, base64)")


class Refusal(BaseModel):
    stored: bool
    message: str


def _text(services: ServicesDep) -> ConsentTextDoc:
    s = services.settings
    return consent_text(s.consent.max_retention_s, s.kiosk.consent_ttl_s,
                        s.consent.delete_on_boarding, s.matching.mode)


def _matching(body: EnrolmentIn, services: ServicesDep) -> str:
    """How this traveller boards: their choice, else the gate's mode; one the gate offers."""
    mode = services.settings.matching.mode
    offered = ("gallery", "token") if mode == "both" else (mode,)
    choice = body.matching or (mode if mode != "both" else None)
    if choice is None:
        raise MatchingChoiceError("ask the traveller to choose: face only, or face and their "
                                  "own key (a QR code they keep)")
    if choice not in offered:
        raise MatchingChoiceError(f"this gate boards by {' or '.join(offered)} only: enrol "
                                  "that way, or send the traveller to the staffed lane")
    return choice


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


def _embeddings(body: EnrolmentPhotos, services: ServicesDep, camera: CameraDep,
                engine: EngineDep) -> list[np.ndarray]:
    """One embedding per enrolment image (same person checked); wiped by the caller."""
    v = services.settings.vision
    if body.source == "camera":
        out = photo.camera_embeddings(engine, camera, body.frames, v.min_face_px)
    elif body.photo and body.photos:
        raise BadImageError("send either one photo or a list of photos, not both")
    else:
        out = []
    try:
        for text in [] if body.source == "camera" else body.photos or [body.photo or ""]:
            if not text:
                raise BadImageError("no photo was sent: choose a photo or use the camera")
            data = photo.photo_bytes(text, services.settings.kiosk.max_upload_bytes)
            image = photo.decode_photo(data)
            del data
            out.append(photo.enrolment_embedding(engine, image, v.min_face_px))
            del image
        photo.check_same_person(out, v.match_threshold)
    except BaseException:
        for vec in out:
            vec.fill(0.0)
        raise
    return out


def _scope(ref_scope: str | None, flight: str | None, services: ServicesDep,
           boarding: BoardingDep) -> str:
    """The consent's scope: the boarding pass's flight, else the typed flight (today), else
    the one flight boarding now, else this gate today (no flight: boards only when no flight
    is set)."""
    day = dt.datetime.fromtimestamp(services.clock.now()).date()
    if ref_scope:
        return ref_scope
    if flight:
        try:
            return flight_scope(flight, day)
        except BoardingError as exc:
            raise BadReferenceError(str(exc)) from None
    now_boarding = boarding.state().scopes
    if len(now_boarding) == 1:
        return now_boarding[0]
    return f"{services.settings.device.gate_id}/{day:%Y-%m-%d}"


@router.post("/api/enrolments/check", response_model=PhotoCheck)
def check_photo(body: PhotoIn, _: AgentDep, services: ServicesDep, engine: EngineDep,
                camera: CameraDep) -> PhotoCheck:
    """Quality feedback before enrolling ("move closer", "face the camera"); stores nothing."""
    image = _image(body, services, camera)
    result = photo.assess(engine, image, services.settings.vision.min_face_px)
    return PhotoCheck(**result.feedback())


@router.post("/api/enrolments", response_model=Receipt, status_code=201,
             response_model_exclude_none=True)
def enrol(body: EnrolmentIn, session: AgentDep, services: ServicesDep, engine: EngineDep,
          store: StoreDep, board: BoardDep, camera: CameraDep,
          boarding: BoardingDep, response: Response) -> Receipt:
    """Enrol a traveller who accepted the consent text from 1-3 photos or camera frames (their
    mean); returns the receipt (expiry and the withdrawal code, shown once; in token mode the
    traveller's key too, as text, QR code and PDF). Enrolling the same reference again for
    the same flight replaces the earlier enrolment."""
    response.headers["Cache-Control"] = "no-store"
    if not body.consent_accepted:
        raise ConsentNotGivenError("the traveller has not accepted: tap 'I agree' first, or "
                                   "'No thanks' to use the staffed lane")
    if body.consent_version != _text(services)["version"]:
        raise StaleConsentTextError("the consent text has changed: show the traveller the "
                                    "current text and ask again")
    matching = _matching(body, services)
    ref = parse_reference(body.reference)
    scope = _scope(ref.scope, body.flight, services, boarding)
    embeddings = _embeddings(body, services, camera, engine)
    s = services.settings
    now = services.clock.now()
    keys: list[PassengerKey] = []
    try:
        consent, enrolment = grant_and_enrol(
            store, reference=ref.booking_ref,
            purpose=f"face boarding at gate {s.device.gate_id}", scope=scope,
            expires_at=now + s.kiosk.consent_ttl_s, embeddings=embeddings,
            model_name=engine.embedder_name, actor=session.staff_id,
            enrol_with=sealing(store, services.clock, keys) if matching == "token" else None)
    finally:
        for vec in embeddings:
            vec.fill(0.0)
    del embeddings
    board.record_count("enrolled")
    log.info("kiosk_enrolled", consent_id=consent.consent_id, matching=matching)
    expires = float(min(consent.expires_at, enrolment.expires_at))
    when = dt.datetime.fromtimestamp(expires).astimezone()
    receipt = Receipt(withdrawal_code=consent.withdrawal_code, expires_at=expires,
                      expires_at_iso=when.isoformat(timespec="minutes"), scope=scope,
                      message=f"You are enrolled until {when:%H:%M} on {when:%d %b}. Keep the "
                              "withdrawal code to withdraw at any time.")
    if keys:
        return _with_token(receipt, keys[0], f"{when:%H:%M} on {when:%d %b}", s.device.gate_id)
    return receipt


def _with_token(receipt: Receipt, key: PassengerKey, until: str, gate: str) -> Receipt:
    """The receipt with the traveller's key (text, QR code, PDF); the key is wiped here. A QR
    code or PDF that cannot be made leaves the text, which the traveller can still use."""
    try:
        token = key.token()
    finally:
        key.wipe()
    receipt.matching, receipt.token = "token", token
    receipt.message = (f"You are enrolled until {until}. This QR code is your boarding key: "
                       "show it at the gate. We keep no copy of it. Keep the withdrawal code "
                       "to withdraw at any time.")
    try:
        receipt.token_qr_svg = qr_svg_data_uri(token)
        receipt.receipt_pdf = receipt_pdf_b64(token, valid_until=until, scope=receipt.scope,
                                              gate=gate,
                                              withdrawal_code=receipt.withdrawal_code)
    except Exception as exc:
        log.error("kiosk_receipt_render_failed", error=type(exc).__name__)
    return receipt


@router.post("/api/enrolments/refusal", response_model=Refusal)
def refuse(_: AgentDep, board: BoardDep) -> Refusal:
    """The traveller said no: nothing is stored; they use the staffed lane."""
    board.record_count("refused")
    log.info("kiosk_consent_refused")
    return Refusal(stored=False, message="Nothing was stored. Please use the staffed lane.")
