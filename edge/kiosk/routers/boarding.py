"""Now boarding: which flight the gate boards, shown on the lane board and set by a supervisor.

`GET /api/boarding` says what boards now (the supervisor's choice, else the schedule file's
flight, else none: every flight) and offers the flights of the valid enrolments to pick from
(flight, day and how many travellers, no identity). `PUT` sets one flight or a few (picked, or
typed with a day), `DELETE` clears the choice; both need a supervisor, are audited with their
id and shown on the board. The daemon's gallery then searches only those flights' templates.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from edge.consent.boarding import (
    MAX_BOARDING_FLIGHTS,
    BoardingError,
    describe_scope,
    flight_scope,
    parse_scope,
)
from edge.kiosk.deps import BoardingDep, BoardingSetDep, ClockDep, StoreDep, ViewerDep
from edge.kiosk.errors import KioskError
from edge.kiosk.store_ops import audit, summary

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/boarding", tags=["boarding"])


class BadFlightError(KioskError):
    status, code = 422, "bad_flight"


class FlightChoice(BaseModel):
    scope: str
    flight: str
    travellers: int


class BoardingOut(BaseModel):
    source: str
    scopes: list[str]
    flights: list[str]
    message: str
    choices: list[FlightChoice]


class BoardingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flights: list[str] = Field(min_length=1, max_length=MAX_BOARDING_FLIGHTS,
                               description="flight scopes from the choices (XY0123/015), or "
                                           "typed flight numbers (XY123) for `date`")
    date: dt.date | None = Field(None, description="the day of typed flights (default today)")


def _out(boarding: BoardingDep, store: StoreDep, clock: ClockDep) -> BoardingOut:
    today = dt.datetime.fromtimestamp(clock.now()).date()
    per_scope = Counter(r["scope"] for r in summary(store)
                        if r["status"] == "active" and int(r["templates"]) > 0
                        and parse_scope(r["scope"]) is not None)
    choices = [FlightChoice(scope=scope, flight=describe_scope(scope, today), travellers=n)
               for scope, n in sorted(per_scope.items())]
    info: dict[str, Any] = boarding.summary()
    return BoardingOut(**info, choices=choices)


@router.get("", response_model=BoardingOut)
def now_boarding(_: ViewerDep, boarding: BoardingDep, store: StoreDep,
                 clock: ClockDep) -> BoardingOut:
    """The flight(s) boarding now and the flights of the valid enrolments."""
    return _out(boarding, store, clock)


@router.put("", response_model=BoardingOut)
def set_boarding(body: BoardingIn, session: BoardingSetDep, boarding: BoardingDep,
                 store: StoreDep, clock: ClockDep) -> BoardingOut:
    """Board these flights now (picked scopes, or flight numbers typed for a day)."""
    day = body.date or dt.datetime.fromtimestamp(clock.now()).date()
    try:
        scopes = [f if parse_scope(f) is not None else flight_scope(f, day)
                  for f in (x.strip().upper() for x in body.flights)]
        boarding.set_scopes(scopes)
    except BoardingError as exc:
        raise BadFlightError(str(exc)) from None
    audit(store, "boarding_set", session.staff_id, None, ",".join(scopes))
    log.info("kiosk_boarding_set", flights=len(scopes))
    return _out(boarding, store, clock)


@router.delete("", response_model=BoardingOut)
def clear_boarding(session: BoardingSetDep, boarding: BoardingDep, store: StoreDep,
                   clock: ClockDep) -> BoardingOut:
    """Clear the supervisor's choice: the schedule's flight boards, else every flight."""
    boarding.set_scopes(())
    audit(store, "boarding_cleared", session.staff_id)
    log.info("kiosk_boarding_cleared")
    return _out(boarding, store, clock)
