"""The pipeline's commands to the gate controller, and what a lane does when one is not taken.

`send_command` opens or denies a lane and raises `GateRefused` (with the controller's refusal
code) when the controller answers ok=false. `not_taken` turns a failed open into the lane's
actions: a refusal that says the lane is held open (`busy`: a supervisor's override is still
open) voids only this grant and sends the traveller to staff, the lane staying in service;
anything else (no answer, a fire alarm, a fault) takes the lane to manual with the reason.
"""

from __future__ import annotations

from edge.decisions.lanes import Action, DenyGate, LaneMachine, OpenGate
from gate_controller.ports import GateCommands

# refusals that say the lane is held open: the link is fine, never "controller unavailable"
HELD_OPEN_CODES = ("busy",)


class GateRefused(Exception):
    """The gate controller answered a command with ok=false (`code`: its refusal code)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def send_command(gate: GateCommands, action: OpenGate | DenyGate) -> None:
    """Open or deny the lane; raises GateRefused on a refusal, the client's error on none."""
    if isinstance(action, OpenGate):
        ack = gate.open(action.lane, action.grant_id, action.ttl_ms)
    else:
        ack = gate.deny(action.lane)
    if not ack.ok:  # the controller refused (e.g. busy, fire alarm)
        raise GateRefused(f"{ack.code}: {ack.error}", ack.code)


def not_taken(machine: LaneMachine, exc: Exception) -> list[Action]:
    """The lane's actions after the controller did not take its grant (`exc` says why)."""
    if isinstance(exc, GateRefused) and exc.code in HELD_OPEN_CODES:
        return machine.grant_refused(f"the gate refused the grant ({exc})"[:200])
    return machine.gate_fault(f"gate controller did not take the grant ({exc})"[:200])
