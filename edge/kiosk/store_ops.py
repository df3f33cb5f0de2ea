"""The kiosk's calls into the consent store, in one place, with store errors made HTTP-friendly.

Every staff action that changes something is audited by the store with the staff id as actor
(consent, enrolment, withdrawal) or here through `audit` (log-in, log-out, override, reset).
Store errors that mean "the store is unusable" become 503 with the store's own advice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import structlog

from edge.consent.errors import (
    ConsentRequiredError,
    ConsentStoreError,
    InvalidConsentError,
    InvalidEmbeddingError,
)
from edge.consent.records import Consent, Enrolment, Staff
from edge.consent.sealed import SealedTemplates
from edge.consent.store import ConsentStore
from edge.consent.token_format import PassengerKey
from edge.kiosk.errors import (
    BadReferenceError,
    KioskError,
    PoorQualityError,
    ServiceUnavailableError,
)
from edge.kiosk.services import StoreLike

log = structlog.get_logger(__name__)


class EnrolmentConflictError(KioskError):
    status, code = 409, "enrolment_failed"


def _unavailable(exc: ConsentStoreError) -> ServiceUnavailableError:
    log.error("kiosk_store_error", error=type(exc).__name__)
    return ServiceUnavailableError(f"the consent store is unavailable ({exc}); call an engineer")


def find_staff(store: StoreLike, name: str) -> Staff | None:
    try:
        return store.staff.get(name)
    except ConsentStoreError as exc:
        raise _unavailable(exc) from None


def audit(store: StoreLike, event: str, actor: str, subject: str | None = None,
          reason: str | None = None) -> None:
    try:
        store.audit_log.record(event, actor, subject, reason)
    except ConsentStoreError as exc:
        raise _unavailable(exc) from None


Enrol = Callable[[str, list[np.ndarray], str, str], Enrolment]  # id, embeddings, model, actor


def sealing(store: StoreLike, clock: Any, keys: list[PassengerKey]) -> Enrol:
    """An `enrol_with` for token mode: seals the template (edge.consent.sealed) and appends its
    key to `keys` (the caller shows the token once, then wipes the key)."""
    if not isinstance(store, ConsentStore):
        raise ServiceUnavailableError("token enrolment needs the consent store: call an "
                                      "engineer")
    sealed = SealedTemplates(store, clock)

    def enrol(consent_id: str, embeddings: list[np.ndarray], model: str,
              actor: str) -> Enrolment:
        enrolment, key = sealed.enrol(consent_id, embeddings, model, actor)
        keys.append(key)
        return enrolment

    return enrol


def grant_and_enrol(store: StoreLike, *, reference: str, purpose: str, scope: str,
                    expires_at: float, embeddings: Sequence[np.ndarray], model_name: str,
                    actor: str, enrol_with: Enrol | None = None) -> tuple[Consent, Enrolment]:
    """Record the consent and its template (the mean of `embeddings`; sealed under the
    traveller's own key with `enrol_with=sealing(...)`); if enrolment fails, withdraw the
    fresh consent so nothing is left behind (an earlier consent of the same reference and
    flight is replaced only inside the enrolment's own transaction, so it stays as it was).
    Returns (Consent, Enrolment)."""
    try:
        consent = store.grant_consent(reference, purpose, scope, expires_at, actor)
    except InvalidConsentError:
        raise BadReferenceError("the boarding reference was not accepted: scan the boarding "
                                "pass again or type the booking reference") from None
    except ConsentStoreError as exc:
        raise _unavailable(exc) from None
    try:
        enrolment = (enrol_with or store.enrol)(consent.consent_id, list(embeddings),
                                                model_name, actor)
    except (InvalidEmbeddingError, ConsentRequiredError, ConsentStoreError) as exc:
        _undo(store, consent.consent_id, actor)
        if isinstance(exc, InvalidEmbeddingError):
            raise PoorQualityError(("take the photo again",)) from None
        if isinstance(exc, ConsentRequiredError):
            raise EnrolmentConflictError("the consent could not be used: start again") from None
        raise _unavailable(exc) from None
    except BaseException:  # anything else (a bug, a cancelled request): no half enrolment
        _undo(store, consent.consent_id, actor)
        raise
    return consent, enrolment


def _undo(store: StoreLike, consent_id: str, actor: str) -> None:
    """Withdraw a consent whose enrolment failed; if even that fails (the store is down, the
    process dies), the store's repair at its next open removes it (edge.consent.repair)."""
    try:
        store.withdraw(consent_id=consent_id, actor=actor, reason="enrolment_failed")
    except Exception as exc:
        log.error("kiosk_enrol_undo_failed", consent_id=consent_id, error=type(exc).__name__)


def withdraw(store: StoreLike, *, reference: str | None, code: str | None, actor: str,
             reason: str) -> bool:
    try:
        if reference is not None:
            return bool(store.withdraw(reference=reference, actor=actor, reason=reason))
        return bool(store.withdraw(withdrawal_code=code, actor=actor, reason=reason))
    except InvalidConsentError:
        raise BadReferenceError("that booking reference or withdrawal code is not valid: check "
                                "it and try again") from None
    except ConsentStoreError as exc:
        raise _unavailable(exc) from None


def summary(store: StoreLike) -> list[dict[str, Any]]:
    try:
        return list(store.consent_summary())
    except ConsentStoreError as exc:
        raise _unavailable(exc) from None
