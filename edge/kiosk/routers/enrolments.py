"""Enrolment with consent: the consent text, photo checks, enrolment, and one-tap refusal.

Photos arrive as base64 in JSON (never multipart, whose parser spools large files to disk) and
the whole body is size-checked before it is read (see `limits.py`). Nothing is stored until
the traveller has accepted the current consent text and the photo has passed the quality gate;
a refusal stores nothing at all. No response ever contains an image or an embedding.

On a token or both gate (settings matching.mode) a traveller can enrol with their own key: the
template is sealed under a fresh key (edge.consent.sealed) and the receipt, the only response
that ever carries it, gives the token as text, a QR code and a printable PDF (no-store).

The booking reference is checked at its own first step (`POST /api/enrolments/reference`), before
the traveller sees the consent text. The consent text comes in the traveller's language (chosen
on screen, edge.kiosk.i18n); the consent row records its version and that language. A photo
check returns the found face's box (geometry only) so the page can show the agent a crop drawn
from the file it already holds: no response carries pixels.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import numpy as np
import structlog
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from edge.consent.boarding import BoardingError, flight_scope
from edge.consent.token_format import PassengerKey
from edge.kiosk import i18n, photo
from edge.kiosk.consent_text import ConsentTextDoc, consent_record, consent_text
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
from edge.vision.imageio import MAX_PIXELS

log = structlog.get_logger(__name__)
router = APIRouter(tags=["enrolment"])

MAX_PHOTO_B64 = photo.b64_limit(64 * 1024 * 1024)  # schema bound; settings bound is tighter


class ConsentSection(BaseModel):
    id: str
    title: str
    body: str


class Language(BaseModel):
    code: str
    label: str  # the language's own name for itself (an API key `name` reads as a person's)


class ConsentText(BaseModel):
    version: str
    language: str
    title: str
    sections: list[ConsentSection]
    retention_hours: int
    languages: list[Language]
    screen: dict[str, str]
    receipt: dict[str, str]
    lanes: dict[str, str]


LANGUAGE = Field(i18n.DEFAULT, pattern="^[a-z]{2}$",
                 description="language of the consent text the traveller read (GET "
                             "/api/consent-text lists them)")


class ReferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(min_length=1, max_length=512,
                           description="booking reference, or BCBP barcode text")
    flight: str | None = Field(None, min_length=2, max_length=16,
                               description="flight number for a typed reference")


class ReferenceOk(BaseModel):
    """The reference is usable; `scope` is the flight and day it will be enrolled for (never
    the reference itself)."""

    ok: bool
    scope: str
    from_boarding_pass: bool


class UploadLimits(BaseModel):
    max_upload_bytes: int
    max_upload_words: str
    max_photos: int
    max_pixels: int


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
    consent_language: str = LANGUAGE
    matching: Literal["gallery", "token"] | None = Field(
        None, description="gallery: face only; token: face and the traveller's own key (a QR "
                          "code on the receipt). Default: the gate's mode (a `both` gate "
                          "needs the traveller's choice)")


class PhotoCheck(BaseModel):
    """Quality advice and, for the agent's preview, where the face is (pixels of the decoded
    photo: x, y, width, height) and the photo's size: geometry only, never image data."""

    faces: int
    ok: bool
    advice: list[str]
    box: list[int] | None = None
    width: int | None = None
    height: int | None = None


class Receipt(BaseModel):
    withdrawal_code: str
    expires_at: float
    expires_at_iso: str
    scope: str
    message: str  # in the language of the consent text the traveller read
    # token enrolments only (left out otherwise): shown once, kept nowhere
    matching: Literal["token"] | None = None
    token: str | None = Field(None, description="the traveller's key: their only copy")
    token_qr_svg: str | None = Field(None, description="the token's QR code (SVG data URI)")
    receipt_pdf: str | None = Field(None, description="printable receipt (PDF, base64)")


class Refusal(BaseModel):
    stored: bool
    message: str


def _text(services: ServicesDep, language: str = i18n.DEFAULT) -> ConsentTextDoc:
    s = services.settings
    return consent_text(s.consent.max_retention_s, s.kiosk.consent_ttl_s,
                        s.consent.delete_on_boarding, s.matching.mode, language)


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
def get_consent_text(_: ViewerDep, services: ServicesDep,
                     lang: str = Query(i18n.DEFAULT, pattern="^[a-z]{2}$")) -> ConsentTextDoc:
    """The consent text to show the traveller (purpose, storage, retention, withdrawal,
    alternative) in `lang`, with the screen, receipt and lane words of that language, the
    languages offered and the version (over all languages), which the enrolment must echo."""
    return _text(services, lang)


@router.get("/api/enrolments/limits", response_model=UploadLimits)
def upload_limits(_: ViewerDep, services: ServicesDep) -> UploadLimits:
    """What a photo may be (settings kiosk.max_upload_bytes): the page refuses a larger file
    before sending it, in the same words as the server."""
    n = services.settings.kiosk.max_upload_bytes
    return UploadLimits(max_upload_bytes=n, max_upload_words=photo.limit_words(n),
                        max_photos=MAX_PHOTOS, max_pixels=MAX_PIXELS)


@router.post("/api/enrolments/reference", response_model=ReferenceOk)
def check_reference(body: ReferenceIn, _: AgentDep, services: ServicesDep,
                    boarding: BoardingDep) -> ReferenceOk:
    """Step 1: is this a booking reference or boarding pass (and the flight a flight)? Checked
    before the traveller sees the consent text; stores nothing, never echoes the reference."""
    ref = parse_reference(body.reference)
    scope = _scope(ref.scope, body.flight, services, boarding)
    return ReferenceOk(ok=True, scope=scope, from_boarding_pass=ref.scope is not None)


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
    height, width = image.shape[:2]
    del image
    box = None if result.face is None else [round(float(v)) for v in result.face.box]
    return PhotoCheck(**result.feedback(), box=box, width=width, height=height)


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
    text = _text(services, body.consent_language)  # 422 for a language not offered
    if body.consent_version != text["version"]:
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
            purpose=consent_record(f"face boarding at gate {s.device.gate_id}",
                                   text["version"], body.consent_language), scope=scope,
            expires_at=now + s.kiosk.consent_ttl_s, embeddings=embeddings,
            model_name=engine.embedder_name, actor=session.staff_id,
            enrol_with=sealing(store, services.clock, keys) if matching == "token" else None)
    finally:
        for vec in embeddings:
            vec.fill(0.0)
    del embeddings
    board.record_count("enrolled")
    log.info("kiosk_enrolled", consent_id=consent.consent_id, matching=matching,
             language=body.consent_language)
    expires = float(min(consent.expires_at, enrolment.expires_at))
    when = dt.datetime.fromtimestamp(expires).astimezone()
    until = f"{when:%Y-%m-%d %H:%M}"  # one form in every language
    receipt = Receipt(withdrawal_code=consent.withdrawal_code, expires_at=expires,
                      expires_at_iso=when.isoformat(timespec="minutes"), scope=scope,
                      message=text["receipt"]["enrolled_until"].format(until=until))
    if keys:
        return _with_token(receipt, keys[0], until, s.device.gate_id, text["receipt"])
    return receipt


def _with_token(receipt: Receipt, key: PassengerKey, until: str, gate: str,
                words: dict[str, str]) -> Receipt:
    """The receipt with the traveller's key (text, QR code, PDF); the key is wiped here. A QR
    code or PDF that cannot be made leaves the text, which the traveller can still use."""
    try:
        token = key.token()
    finally:
        key.wipe()
    receipt.matching, receipt.token = "token", token
    receipt.message = (words["enrolled_until"].format(until=until) + " "
                       + words["token_message"])
    try:
        receipt.token_qr_svg = qr_svg_data_uri(token)
        receipt.receipt_pdf = receipt_pdf_b64(token, valid_until=until, scope=receipt.scope,
                                              gate=gate,
                                              withdrawal_code=receipt.withdrawal_code,
                                              words=words)
    except Exception as exc:
        log.error("kiosk_receipt_render_failed", error=type(exc).__name__)
    return receipt


@router.post("/api/enrolments/refusal", response_model=Refusal)
def refuse(_: AgentDep, board: BoardDep) -> Refusal:
    """The traveller said no: nothing is stored; they use the staffed lane."""
    board.record_count("refused")
    log.info("kiosk_consent_refused")
    return Refusal(stored=False, message="Nothing was stored. Please use the staffed lane.")
