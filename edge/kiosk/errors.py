"""Kiosk errors and their HTTP mapping: every refusal is `{"error": code, "message": text}`.

Messages are plain words that tell staff what to do next. They never echo what was sent (no
passwords, references, codes or image bytes), so a refused request leaks nothing into the page
or the logs.
"""

from __future__ import annotations

from foundation.errors import ConsentGateError


class KioskError(ConsentGateError):
    """Base of every kiosk error; `status` is the HTTP status, `code` a stable identifier."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}


class NotLoggedInError(KioskError):
    status, code = 401, "not_logged_in"


class SessionExpiredError(KioskError):
    status, code = 401, "session_expired"


class BadLoginError(KioskError):
    status, code = 401, "bad_login"


class LockedOutError(KioskError):
    status, code = 429, "locked_out"


class WrongRoleError(KioskError):
    status, code = 403, "wrong_role"


class CsrfError(KioskError):
    status, code = 403, "csrf"


class UploadTooLargeError(KioskError):
    status, code = 413, "upload_too_large"


class TooManyPixelsError(KioskError):
    """A photo over the decoder's pixel limit (edge.vision.imageio.MAX_PIXELS)."""

    status, code = 413, "too_many_pixels"


class BadImageError(KioskError):
    status, code = 422, "bad_image"


class NoFaceError(KioskError):
    status, code = 422, "no_face"


class MultipleFacesError(KioskError):
    status, code = 422, "multiple_faces"


class DifferentPeopleError(KioskError):
    status, code = 422, "different_people"


class PoorQualityError(KioskError):
    status, code = 422, "poor_quality"

    def __init__(self, reasons: tuple[str, ...]) -> None:
        super().__init__("the photo is not good enough yet: " + "; ".join(reasons)
                         + ". Take the photo again.")
        self.reasons = reasons


class BadReferenceError(KioskError):
    status, code = 422, "bad_reference"


class ConsentNotGivenError(KioskError):
    status, code = 422, "consent_not_given"


class StaleConsentTextError(KioskError):
    status, code = 409, "consent_text_changed"


class NoCameraError(KioskError):
    status, code = 409, "no_camera"


class NothingToWithdrawError(KioskError):
    status, code = 404, "not_found"


class NotFoundError(KioskError):
    status, code = 404, "not_found"


class UnknownLaneError(KioskError):
    status, code = 404, "unknown_lane"


class NoGateError(KioskError):
    status, code = 409, "no_gate"


class GateRefusedError(KioskError):
    status, code = 409, "gate_refused"


class GateUnavailableError(KioskError):
    status, code = 503, "gate_unavailable"


class ServiceUnavailableError(KioskError):
    status, code = 503, "unavailable"


class MatchingChoiceError(KioskError):
    """The enrolment's way of boarding (face only, or face and own key) is missing or is not
    one this gate offers (settings matching.mode)."""

    status, code = 422, "matching_choice"


class TokensNotTakenError(KioskError):
    """A token was sent to a lane of a gate that takes no tokens here."""

    status, code = 409, "tokens_not_taken"
