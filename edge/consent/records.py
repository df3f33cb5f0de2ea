"""Plain value types returned by the consent store (no behaviour, no secrets), and the one
text bound every repository applies to names, actors and reasons.

`TemplateRow.vector` is excluded from repr so that a logged row never carries an embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.consent.errors import InvalidConsentError


@dataclass(frozen=True)
class Consent:
    """A granted consent. `withdrawal_code` is shown to the traveller once and stored hashed."""

    consent_id: str
    withdrawal_code: str = field(repr=False)
    granted_at: float
    expires_at: float


@dataclass(frozen=True)
class Enrolment:
    consent_id: str
    template_ids: tuple[int, ...]
    expires_at: float


@dataclass(frozen=True)
class TemplateRow:
    template_id: int
    consent_id: str
    expires_at: float
    vector: np.ndarray = field(repr=False, compare=False)
    scope: str = ""  # the consent's scope (flight and day), for the gallery's boarding filter
    images: int = 1  # embeddings averaged into this template (the FPIR rule weighs it)


@dataclass(frozen=True)
class Staff:
    name: str
    role: str
    password_hash: str = field(repr=False)
    disabled: bool = False


def bounded_text(value: str, what: str, limit: int = 128) -> str:
    """`value` stripped, refused with InvalidConsentError unless 1..`limit` characters."""
    value = str(value).strip()
    if not value or len(value) > limit:
        raise InvalidConsentError(f"{what} must be 1-{limit} characters")
    return value
