"""Withdrawal by booking reference or withdrawal code: templates are deleted at once."""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.kiosk.deps import BoardDep, StoreDep, WithdrawDep
from edge.kiosk.errors import NothingToWithdrawError
from edge.kiosk.references import parse_reference
from edge.kiosk.store_ops import withdraw

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/withdrawals", tags=["withdrawal"])


class WithdrawalIn(BaseModel):
    """Exactly one of `reference` (booking reference or BCBP text) or `code`."""

    model_config = ConfigDict(extra="forbid")
    reference: str | None = Field(None, min_length=1, max_length=512)
    code: str | None = Field(None, min_length=1, max_length=32,
                             description="withdrawal code from the receipt")
    by: str = Field("traveller", pattern="^(traveller|agent)$",
                    description="who asked: the traveller, or an agent on their behalf")

    @model_validator(mode="after")
    def _one(self) -> WithdrawalIn:
        if (self.reference is None) == (self.code is None):
            raise ValueError("give either the booking reference or the withdrawal code")
        return self


class WithdrawalOut(BaseModel):
    withdrawn: bool
    message: str


@router.post("", response_model=WithdrawalOut)
def withdraw_consent(body: WithdrawalIn, session: WithdrawDep, store: StoreDep,
                     board: BoardDep) -> WithdrawalOut:
    """Withdraw consent now; the traveller's template is deleted and never matches again."""
    reference = parse_reference(body.reference).booking_ref if body.reference else None
    done = withdraw(store, reference=reference, code=body.code, actor=session.staff_id,
                    reason=f"asked by {body.by}")
    if not done:
        raise NothingToWithdrawError("nothing is enrolled under that booking reference or "
                                     "code: check it, or it was already withdrawn or expired")
    board.record_count("withdrawn")
    log.info("kiosk_withdrawn")
    return WithdrawalOut(withdrawn=True, message="Withdrawn. The face template is deleted; "
                                                 "please use the staffed lane.")
