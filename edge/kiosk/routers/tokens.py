"""Token mode at the kiosk: which ways of boarding this gate offers, and the lane board's
keyboard-wedge scanner.

A keyboard-wedge scanner types the traveller's token into the lane board's field and presses
Enter; the page sends it here and the daemon's token gate (edge.decisions.token_setup) opens it
for that lane. The answer says only that it was received: the outcome shows on the lane (a
refused token raises a lane alert). No response carries the token, and it is never logged.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from edge.consent.token_format import MAX_TOKEN_CHARS
from edge.kiosk.consent_text import MATCHING_WORDS
from edge.kiosk.deps import AgentDep, BoardDep, ServicesDep, ViewerDep
from edge.kiosk.errors import TokensNotTakenError, UnknownLaneError

log = structlog.get_logger(__name__)
router = APIRouter(tags=["tokens"])

LanePath = Path(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")
TITLES = {"gallery": "Face only", "token": "Face and my own key (QR code)"}


class MatchingChoice(BaseModel):
    id: str
    title: str
    body: str


class MatchingOut(BaseModel):
    mode: str
    choices: list[MatchingChoice]
    kiosk_scan: bool
    lanes: list[str]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS,
                       description="what the scanner read (the traveller's boarding key)")


class TokenReceived(BaseModel):
    lane: str
    received: bool
    message: str


@router.get("/api/matching", response_model=MatchingOut)
def matching(_: ViewerDep, services: ServicesDep, board: BoardDep) -> MatchingOut:
    """How this gate finds travellers (settings matching.mode), in the traveller's words: the
    ways an enrolment can choose, and whether the lane board takes scanned keys."""
    mode = services.settings.matching.mode
    ids = ["gallery", "token"] if mode == "both" else [mode]
    tokens = services.tokens
    return MatchingOut(mode=mode, kiosk_scan=bool(tokens is not None and tokens.kiosk_scan),
                       lanes=list(board.lanes),
                       choices=[MatchingChoice(id=i, title=TITLES[i], body=MATCHING_WORDS[i])
                                for i in ids])


@router.post("/api/lanes/{lane}/token", response_model=TokenReceived, status_code=202)
def scan_token(body: TokenIn, _: AgentDep, services: ServicesDep, board: BoardDep,
               lane: str = LanePath) -> TokenReceived:
    """A keyboard-wedge scanner on the lane board read a traveller's key at `lane`."""
    if lane not in board.lanes:
        raise UnknownLaneError(f"there is no lane {lane!r}: choose one of "
                               f"{', '.join(board.lanes)}")
    tokens = services.tokens
    if tokens is None or not tokens.kiosk_scan:
        raise TokensNotTakenError("this gate takes no boarding keys from the kiosk (settings "
                                  "matching.mode and matching.kiosk_scan)")
    if not tokens.submit(body.token, lane, "kiosk"):
        raise TokensNotTakenError("the lane is busy with other keys: scan again in a moment")
    log.info("kiosk_token_scanned", lane=lane)
    return TokenReceived(lane=lane, received=True,
                         message=f"key received for lane {lane}: the traveller looks at the "
                                 "camera now")
