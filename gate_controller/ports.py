"""The gate interface the daemon and the kiosk program against: one definition, two makers.

`GateClient` (gate_controller.client) speaks gate/1 to a real controller; `FakeGateClient`
(gate_controller.fake_client) answers in memory, as httpx ships its mock transport beside the
real one. Every command returns an `Ack` (`ok=False` with a `code` for a refusal) or raises
`GateUnavailableError` when no controller answered; nothing returns None or a bool.
"""

from __future__ import annotations

from typing import Literal, Protocol

from wire.gate import Ack, Event


class GateCommands(Protocol):
    """What the daemon's decisions and the kiosk's supervisor screens send to the gate."""

    def open(self, lane: str, grant_id: str, ttl_ms: int) -> Ack: ...
    def deny(self, lane: str) -> Ack: ...
    def reset(self, lane: str, reason: str, actor: str) -> Ack: ...
    def override(self, lane: str, action: Literal["open", "close"], reason: str,
                 actor: str) -> Ack: ...


class GatePort(GateCommands, Protocol):
    """The whole client: commands, heartbeats, status and the event stream."""

    def heartbeat(self) -> Ack: ...
    def status(self) -> dict[str, str]: ...
    def status_detail(self) -> Ack: ...
    def next_event(self, timeout_ms: int) -> Event | None: ...
    def close(self) -> None: ...
