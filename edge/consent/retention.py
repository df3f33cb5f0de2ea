"""Retention arithmetic, kept pure so it can be property-tested.

A consent lasts until the earlier of the expiry asked for and grant + max retention. A template
lasts until the earlier of its consent's expiry and enrolment + max retention. Something is live
while now < expires_at (at expires_at exactly it is already gone).
"""

from __future__ import annotations

import math

from edge.consent.errors import InvalidConsentError


def consent_expiry(granted_at: float, requested_expires_at: float, max_retention_s: float) -> float:
    """Effective expiry of a consent granted at `granted_at`."""
    if not math.isfinite(requested_expires_at):
        raise InvalidConsentError("consent expiry must be a finite time: pass an epoch time "
                                  "in seconds")
    if requested_expires_at <= granted_at:
        raise InvalidConsentError("consent expiry is not in the future: choose a later expiry "
                                  "(e.g. the end of the flight's day)")
    return min(float(requested_expires_at), float(granted_at) + float(max_retention_s))


def template_expiry(enrolled_at: float, consent_expires_at: float, max_retention_s: float) -> float:
    """Effective expiry of a template enrolled at `enrolled_at` under a consent."""
    return min(float(consent_expires_at), float(enrolled_at) + float(max_retention_s))


def is_live(expires_at: float, now: float) -> bool:
    return now < expires_at
