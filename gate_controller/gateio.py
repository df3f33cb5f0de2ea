"""The hardware boundary of the gate controller: the `GateIO` protocol and its input records.

A driver drives each lane's leaf (open/closed) and alarm buzzer, and reports inputs: passage
sensor pulses, fire-alarm line edges, and its own failure/recovery. Drivers never block: the
server calls `poll` every few milliseconds, and a driver that lost its hardware reports `fault`
and keeps trying to reconnect inside `poll`. Implementations live side by side in `drivers/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

InputKind = Literal["passage", "fire_alarm", "fault", "restored"]


@dataclass(frozen=True)
class GateInput:
    """One input from the gate hardware (`lane` for passages, `active` for the fire alarm)."""

    kind: InputKind
    lane: str | None = None
    active: bool = False
    reason: str = ""


class GateIO(Protocol):
    def set_output(self, lane: str, open_: bool) -> None:
        """Open or close the lane's leaf (remembered and re-sent after a reconnect)."""
        ...

    def set_alarm(self, lane: str, on: bool) -> None:
        """Sound or silence the lane's tailgating alarm."""
        ...

    def poll(self, now: float) -> list[GateInput]:
        """Inputs since the last call; never blocks (now: monotonic seconds)."""
        ...

    def close(self) -> None:
        """Release the hardware."""
        ...
