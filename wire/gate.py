"""The gate link's wire format ("gate/1"): commands, acks and events, shared with the daemon.

Every message is one compact JSON object (one ZeroMQ frame) with a `schema` field and a `kind`
(`command`, `ack` or `event`). Commands carry a request `id` that the ack echoes. No message
ever carries biometric data: grant ids are opaque tokens (an issue time and a random part).

Decoding is bounded and strict (wire.bounded_json, then pydantic strict models): a frame over
`MAX_MESSAGE_BYTES` is `too_large` before it is parsed, one nested deeper than `MAX_DEPTH` is
`too_deep` before it is parsed; `NaN`/`Infinity`, strings for numbers, bools for integers,
numbers out of range, duplicate keys and unknown fields are `malformed`. Every refusal raises
`ProtocolError`, whose `code` goes back to the sender in an error ack (see `ERROR_CODES`).
The controller's sockets take frames up to `MAX_FRAME_BYTES` (`SOCKET_MAXMSGSIZE` with the
CurveZMQ overhead), so anything up to 64 KiB gets a `too_large` ack; libzmq drops a larger
frame and the connection it came on, without an answer.

Grant ids carry their issue time: `g<CLOCK_MONOTONIC ms>-<16 hex>` (`new_grant_id`), so the
controller (same box, same clock) refuses a grant older than its ttl plus `GRANT_SLACK_MS`,
and never more than `MAX_GRANT_AGE_MS`, however many grants came after it.
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError

from foundation.errors import ConsentGateError
from wire.bounded_json import JSONLimitError, loads

SCHEMA: Final = "gate/1"
MAX_MESSAGE_BYTES: Final = 4096  # a valid gate/1 message is at most this long
MAX_FRAME_BYTES: Final = 64 * 1024  # frames up to this size are answered (with too_large)
SOCKET_MAXMSGSIZE: Final = MAX_FRAME_BYTES + 256  # ZMQ_MAXMSGSIZE: + CurveZMQ's framing
MAX_DEPTH: Final = 4  # gate/1 nests two levels (an ack's `lanes`); anything deeper is refused
MAX_TTL_MS: Final = 120_000
GRANT_SLACK_MS: Final = 2_000  # a grant may arrive this much after its ttl has run (queueing)
MAX_GRANT_AGE_MS: Final = MAX_TTL_MS + GRANT_SLACK_MS  # no grant is ever taken when older

# Codes of error acks; `ok: false` always carries one of these.
ERROR_CODES: Final = {
    "malformed": "not strict gate/1 JSON: bad UTF-8/JSON, bad type or range, unknown field",
    "too_large": f"frame over {MAX_MESSAGE_BYTES} bytes (frames over {MAX_FRAME_BYTES} are "
                 "dropped by libzmq, unanswered)",
    "too_deep": f"arrays/objects nested deeper than {MAX_DEPTH}",
    "unsupported_schema": "schema is not gate/1",
    "unknown_command": "cmd is not one of the commands",
    "forbidden": "the authenticated peer may not send this command (the operator key: status)",
    "expired": "the command arrived after its deadline",
    "internal": "the controller failed on this frame (a bug, logged); it keeps running",
    "unknown_lane": "the lane is not one of the controller's lanes",
    "grant_used": "the grant was already used or cancelled",
    "grant_stale": "the grant is older than its ttl plus the slack (or the age cap)",
    "grant_future": "the grant's issue time is ahead of the controller's clock",
    "grant_in_use": "the grant holds another lane open",
    "busy": "the lane is open for another grant",
    "manual": "no live daemon heartbeat: lanes are manual",
    "emergency": "the lane is emergency_open (fire alarm)",
    "fire_alarm_active": "the fire alarm is active",
    "io_fault": "the gate I/O is down",
    "alarm_active": "a tailgating alarm needs a staff reset first",
    "unknown_event": "(client side) an event of an unknown kind",
}

LaneId = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_-]+$")]
Token = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
_GRANT_RE: Final = re.compile(r"^g(0|[1-9][0-9]{0,14})-[0-9a-f]{16}$")
GrantId = Annotated[str, Field(min_length=19, max_length=34, pattern=_GRANT_RE.pattern)]


def new_grant_id(monotonic_s: float) -> str:
    """A fresh grant id issued at `monotonic_s` (CLOCK_MONOTONIC seconds, this box)."""
    if not 0 <= monotonic_s < 10**12:
        raise ValueError("monotonic_s must be CLOCK_MONOTONIC seconds")
    return f"g{int(monotonic_s * 1000)}-{secrets.token_hex(8)}"


def grant_issued_s(grant_id: str) -> float | None:
    """The monotonic issue time (seconds) a grant id carries, or None if it carries none."""
    match = _GRANT_RE.match(grant_id)
    return int(match.group(1)) / 1000.0 if match else None


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


# lane states arrive as JSON strings: the one field type validated in lax (value) mode
State = Annotated[LaneState, Strict(False)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    schema_: Literal["gate/1"] = Field(SCHEMA, alias="schema")


class _Command(_Message):
    kind: Literal["command"] = "command"
    id: Token = "0"
    # CLOCK_MONOTONIC seconds (the endpoints are on one box) after which the controller must
    # not act on the command: the sender has given up waiting and treats the lanes as manual.
    deadline: float | None = Field(None, ge=0, le=2**32)


class OpenCmd(_Command):
    """Open `lane` for one passage under `grant_id`, for at most `ttl_ms`."""

    cmd: Literal["open"] = "open"
    lane: LaneId
    grant_id: GrantId
    ttl_ms: int = Field(ge=100, le=MAX_TTL_MS)


class DenyCmd(_Command):
    """The daemon refused the traveller: keep (or make) the lane closed."""

    cmd: Literal["deny"] = "deny"
    lane: LaneId


class ResetCmd(_Command):
    """Staff reset: clear a tailgating alarm, leave emergency_open after the alarm, or a fault.

    `actor` is the staff account the command is sent on behalf of (the kiosk's login); the
    sender is the authenticated peer (CurveZMQ), logged beside it.
    """

    cmd: Literal["reset"] = "reset"
    lane: LaneId
    reason: Text
    actor: Token


class OverrideCmd(_Command):
    """Supervisor override: open the lane for one staff-supervised passage, or close it.

    `actor`: on behalf of whom (see ResetCmd).
    """

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
    state: State | None = None
    lanes: dict[Annotated[str, Field(max_length=16)], State] | None = Field(None, max_length=16)
    info: dict[Annotated[str, Field(max_length=32)],
               Annotated[str, Field(max_length=400)]] | None = Field(None, max_length=32)
    code: str | None = Field(None, max_length=32)
    error: str | None = Field(None, max_length=400)


class _Event(_Message):
    kind: Literal["event"] = "event"
    seq: int = Field(0, ge=0, le=2**53)
    ts: float = Field(0.0, ge=0, le=2**33)


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
    state: State
    reason: str = Field(max_length=200)


class FaultEvent(_Event):
    """The gate I/O failed (`active` true) or recovered (`active` false)."""

    event: Literal["fault"] = "fault"
    active: bool
    reason: str = Field(max_length=200)
    lane: LaneId | None = None


Event = Annotated[PassageEvent | TailgatingEvent | StateEvent | FaultEvent,
                  Field(discriminator="event")]

_COMMAND: TypeAdapter[Command] = TypeAdapter(Command)
_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_ACK = TypeAdapter(Ack)
_T = TypeVar("_T")


def encode(message: BaseModel) -> bytes:
    """One message as a compact JSON frame."""
    return message.model_dump_json(by_alias=True, exclude_none=False).encode("utf-8")


def _validated(adapter: TypeAdapter[_T], obj: dict[str, object], what: str) -> _T:
    try:
        return adapter.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError(f"bad {what}: " + _describe(exc)) from None


def _load(data: bytes, kind: str) -> dict[str, Any]:
    try:
        obj = loads(data, max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_DEPTH)
    except JSONLimitError as exc:
        raise ProtocolError(f"message refused: {exc}", exc.code) from None
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
        where = ".".join(printable(str(p), 32) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def decode_command(data: bytes) -> Command:
    """Parse one command frame; raise ProtocolError (with a `code`) if it is not valid gate/1."""
    obj = _load(data, "command")
    if obj.get("cmd") not in COMMAND_NAMES:
        raise ProtocolError(f"unknown command {str(obj.get('cmd'))[:32]!r}; known: "
                            + ", ".join(COMMAND_NAMES), "unknown_command")
    return _validated(_COMMAND, obj, "command")


def decode_ack(data: bytes) -> Ack:
    obj = _load(data, "ack")
    return _validated(_ACK, obj, "ack")


def decode_event(data: bytes) -> Event:
    obj = _load(data, "event")
    if obj.get("event") not in ("passage", "tailgating", "state", "fault"):
        raise ProtocolError(f"unknown event {str(obj.get('event'))[:32]!r}", "unknown_event")
    return _validated(_EVENT, obj, "event")


_TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


def request_id_of(data: bytes) -> str | None:
    """Best-effort request id of a (possibly invalid) command, so an error ack can echo it."""
    try:
        obj = loads(data, max_bytes=MAX_MESSAGE_BYTES, max_depth=MAX_DEPTH)
    except JSONLimitError:
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) and _TOKEN_RE.match(rid) else None


def printable(text: str, limit: int = 400) -> str:
    """`text` cut to `limit` characters and safe to encode (lone surrogates escaped)."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


def error_ack(exc: ProtocolError, request_id: str | None = None) -> Ack:
    return Ack(id=request_id, ok=False, code=exc.code[:32], error=printable(str(exc)))
