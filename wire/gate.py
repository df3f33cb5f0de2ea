"""The gate link's wire format ("gate/1"): commands, acks and events, shared with the daemon.

Every message is one compact JSON object (one ZeroMQ frame, at most `MAX_MESSAGE_BYTES`) with a
`schema` field and a `kind` (`command`, `ack` or `event`). Commands carry a request `id` that the
ack echoes. Decoding is strict: unknown fields, unknown commands, unknown schema versions, bad
values and oversized or non-JSON frames all raise `ProtocolError`, whose `code` goes back to the
sender in an error ack. No message ever carries biometric data: grant ids are opaque tokens.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from foundation.errors import ConsentGateError

SCHEMA = "gate/1"
MAX_MESSAGE_BYTES = 4096

LaneId = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
Token = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class ProtocolError(ConsentGateError):
    """A gate message is malformed, of an unknown kind, or of an unsupported schema version."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(message)
        self.code = code


class LaneState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    MANUAL = "manual"
    EMERGENCY_OPEN = "emergency_open"
    FAULT = "fault"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal["gate/1"] = Field(SCHEMA, alias="schema")


class _Command(_Message):
    kind: Literal["command"] = "command"
    id: Token = "0"
    # CLOCK_MONOTONIC seconds (the endpoints are on one box) after which the controller must
    # not act on the command: the sender has given up waiting and treats the lanes as manual.
    deadline: float | None = Field(None, ge=0)


class OpenCmd(_Command):
    """Open `lane` for one passage under `grant_id`, for at most `ttl_ms`."""

    cmd: Literal["open"] = "open"
    lane: LaneId
    grant_id: Token
    ttl_ms: int = Field(ge=100, le=120_000)


class DenyCmd(_Command):
    """The daemon refused the traveller: keep (or make) the lane closed."""

    cmd: Literal["deny"] = "deny"
    lane: LaneId


class ResetCmd(_Command):
    """Staff reset: clear a tailgating alarm, leave emergency_open after the alarm, or a fault."""

    cmd: Literal["reset"] = "reset"
    lane: LaneId
    reason: Text
    actor: Token


class OverrideCmd(_Command):
    """Supervisor override: open the lane for one staff-supervised passage, or close it."""

    cmd: Literal["override"] = "override"
    lane: LaneId
    action: Literal["open", "close"]
    reason: Text
    actor: Token


class HeartbeatCmd(_Command):
    """The daemon is alive and in charge of the lanes."""

    cmd: Literal["heartbeat"] = "heartbeat"


class StatusCmd(_Command):
    """Query lane states (does not count as a heartbeat)."""

    cmd: Literal["status"] = "status"


Command = Annotated[OpenCmd | DenyCmd | ResetCmd | OverrideCmd | HeartbeatCmd | StatusCmd,
                    Field(discriminator="cmd")]
COMMAND_NAMES = ("open", "deny", "reset", "override", "heartbeat", "status")


class Ack(_Message):
    """The controller's answer to one command. `ok` false carries `code` and `error`."""

    kind: Literal["ack"] = "ack"
    id: str | None = Field(None, max_length=64)
    cmd: str | None = Field(None, max_length=16)
    ok: bool
    state: LaneState | None = None
    lanes: dict[str, LaneState] | None = None
    info: dict[str, str] | None = None
    code: str | None = Field(None, max_length=32)
    error: str | None = Field(None, max_length=400)


class _Event(_Message):
    kind: Literal["event"] = "event"
    seq: int = Field(0, ge=0)
    ts: float = 0.0


class PassageEvent(_Event):
    """Someone went through `lane`; `grant_id` is None when no grant covered it (manual, fire)."""

    event: Literal["passage"] = "passage"
    lane: LaneId
    grant_id: Token | None = None


class TailgatingEvent(_Event):
    """A passage with no live grant while the lane was closed: the lane's alarm sounds."""

    event: Literal["tailgating"] = "tailgating"
    lane: LaneId
    grant_id: Token | None = None


class StateEvent(_Event):
    """A lane changed state."""

    event: Literal["state"] = "state"
    lane: LaneId
    state: LaneState
    reason: str = Field(max_length=200)


class FaultEvent(_Event):
    """The gate I/O failed (`active` true) or recovered (`active` false)."""

    event: Literal["fault"] = "fault"
    active: bool
    reason: str = Field(max_length=200)
    lane: LaneId | None = None


Event = Annotated[PassageEvent | TailgatingEvent | StateEvent | FaultEvent,
                  Field(discriminator="event")]

_COMMAND = TypeAdapter(Command)
_EVENT = TypeAdapter(Event)
_ACK = TypeAdapter(Ack)


def encode(message: BaseModel) -> bytes:
    """One message as a compact JSON frame."""
    return message.model_dump_json(by_alias=True, exclude_none=False).encode("utf-8")


def _load(data: bytes, kind: str) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("a gate message must be bytes")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}",
                            "too_large")
    try:
        obj = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError("message is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("message must be a JSON object")
    schema = obj.get("schema")
    if schema is None:
        raise ProtocolError("message has no 'schema' field; expected 'gate/1'")
    if schema != SCHEMA:
        raise ProtocolError(f"unsupported schema {str(schema)[:32]!r}: this controller speaks "
                            f"{SCHEMA!r}; upgrade the older side", "unsupported_schema")
    if obj.get("kind") != kind:
        raise ProtocolError(f"expected a {kind!r} message, got kind={str(obj.get('kind'))[:16]!r}")
    return obj


def _describe(exc: ValidationError) -> str:
    parts = []
    for item in exc.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def decode_command(data: bytes) -> Command:
    """Parse one command frame; raise ProtocolError (with a `code`) if it is not valid gate/1."""
    obj = _load(data, "command")
    if obj.get("cmd") not in COMMAND_NAMES:
        raise ProtocolError(f"unknown command {str(obj.get('cmd'))[:32]!r}; known: "
                            + ", ".join(COMMAND_NAMES), "unknown_command")
    try:
        return _COMMAND.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError("bad command: " + _describe(exc)) from None


def decode_ack(data: bytes) -> Ack:
    obj = _load(data, "ack")
    try:
        return _ACK.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError("bad ack: " + _describe(exc)) from None


def decode_event(data: bytes) -> Event:
    obj = _load(data, "event")
    if obj.get("event") not in ("passage", "tailgating", "state", "fault"):
        raise ProtocolError(f"unknown event {str(obj.get('event'))[:32]!r}", "unknown_event")
    try:
        return _EVENT.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError("bad event: " + _describe(exc)) from None


def request_id_of(data: bytes) -> str | None:
    """Best-effort request id of a (possibly invalid) command, so an error ack can echo it."""
    try:
        obj = json.loads(bytes(data[:MAX_MESSAGE_BYTES]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) and 0 < len(rid) <= 64 else None


def error_ack(exc: ProtocolError, request_id: str | None = None) -> Ack:
    return Ack(id=request_id, ok=False, code=exc.code, error=str(exc)[:400])
