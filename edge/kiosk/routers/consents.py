"""Listing of stored consents: counts and expiry times only (no ids, references or images)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter
from pydantic import BaseModel

from edge.kiosk.deps import ClockDep, StoreDep, ViewerDep
from edge.kiosk.store_ops import summary

router = APIRouter(prefix="/api/consents", tags=["consents"])


class ConsentCounts(BaseModel):
    active: int
    withdrawn: int
    boarded: int
    expired: int
    templates: int
    expiring_within_1h: int
    next_expiry_at: float | None
    expiries: list[float]


@router.get("/summary", response_model=ConsentCounts)
def consent_counts(_: ViewerDep, store: StoreDep, clock: ClockDep) -> ConsentCounts:
    """How many consents are active, withdrawn, boarded or expired, and when they expire."""
    rows = summary(store)
    now = clock.now()
    by_status = Counter(r["status"] for r in rows)
    active = sorted(float(r["expires_at"]) for r in rows if r["status"] == "active")
    return ConsentCounts(active=by_status["active"], withdrawn=by_status["withdrawn"],
                         boarded=by_status["boarded"], expired=by_status["expired"],
                         templates=sum(int(r["templates"]) for r in rows
                                       if r["status"] == "active"),
                         expiring_within_1h=sum(1 for t in active if t - now <= 3600),
                         next_expiry_at=active[0] if active else None,
                         expiries=active[:200])
