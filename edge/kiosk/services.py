"""What the kiosk app is built from: `KioskServices`, filled in by the composition root.

The daemon (or a test) builds one of these and passes it to `create_app`. The store, engine,
gate client and camera are the real objects of their rooms; the Protocols below name only the
parts the kiosk calls, so the kiosk never imports a concrete implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from edge.consent.audit import AuditLog
from edge.consent.boarding import Boarding
from edge.consent.records import Consent, Enrolment
from edge.consent.staff import StaffAccounts
from edge.kiosk.board import LaneBoard
from edge.vision.types import FaceEngineLike
from foundation.clock import Clock
from foundation.settings import Settings
from gate_controller.ports import GateCommands


class StoreLike(Protocol):
    """The parts of edge.consent.store.ConsentStore the kiosk uses."""

    @property
    def staff(self) -> StaffAccounts: ...
    @property
    def audit_log(self) -> AuditLog: ...
    def grant_consent(self, reference: str, purpose: str, scope: str, expires_at: float,
                      actor: str) -> Consent: ...
    def enrol(self, consent_id: str, embeddings: Sequence[np.ndarray], model_name: str,
              actor: str) -> Enrolment: ...
    def withdraw(self, *, reference: str | None = None, withdrawal_code: str | None = None,
                 consent_id: str | None = None, actor: str, reason: str = "withdrawn") -> bool: ...
    def consent_summary(self) -> list[dict[str, Any]]: ...
    def stats(self) -> dict[str, int]: ...


class TokensLike(Protocol):
    """The gate's token handling (edge.decisions.token_setup.TokenGate): its matching mode, and
    the lane board's keyboard-wedge scanner's way in."""

    @property
    def mode(self) -> str: ...
    @property
    def kiosk_scan(self) -> bool: ...
    def submit(self, text: str, lane: str | None, source: str) -> bool: ...


class CameraLike(Protocol):
    """A kiosk camera: the latest BGR frame, or None when none has arrived yet."""

    def latest(self) -> np.ndarray | None: ...


@dataclass
class KioskServices:
    settings: Settings
    clock: Clock
    store: StoreLike
    engine: FaceEngineLike
    board: LaneBoard
    gate: GateCommands | None = None
    camera: CameraLike | None = None
    boarding: Boarding | None = None  # the daemon's (its gallery filters by it); else the app's
    tokens: TokensLike | None = None  # the daemon's token gate; None: no lane takes tokens

    @property
    def lanes(self) -> Sequence[str]:
        return self.board.lanes
