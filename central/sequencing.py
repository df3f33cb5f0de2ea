"""The per-device delivery rules every store applies (SQLite and PostgreSQL alike).

`decide(book, window, writes, now)` takes one decoded window and the device's state (its key,
its current epoch, every epoch's last stored seq) and returns what to answer; the rows to write
go to `writes` and `book` is updated as if they were committed. The caller commits `writes` in
one transaction and only then sends the answers (see docs/protocols.md, "uplink/2"):

- a window of the current epoch at or below its last seq: a duplicate (ack, nothing stored);
- `prev` null or equal to the current epoch's last seq: stored; anything else: `gap`;
- a window of an epoch never seen for the device starts it (it becomes current) under the
  same `prev` rule;
- a window of a superseded epoch at or below that epoch's last seq: a re-send (ack);
  above it: two copies of one store are sending (`epoch_superseded`, an alert).

The write list, in order: ("new", device, key, epoch) a device's first window,
("epoch", device, epoch, now) a new current epoch, ("win", row) a window (`ROW` order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from wire import telemetry as schema
from wire.telemetry import COUNT_FIELDS, Rejected

log = structlog.get_logger(__name__)

ROW = ("device", "epoch", "seq", "gate", "window_start", "window_s", "k", "epsilon",
       "received_at", *COUNT_FIELDS)


@dataclass
class DeviceState:
    key: str
    epoch: int  # the current epoch
    epochs: dict[int, int]  # every epoch seen -> the last seq stored in it

    @property
    def last_seq(self) -> int:
        return self.epochs[self.epoch]


@dataclass
class Book:
    """The devices a decision may look at: device -> state, key -> the device it is bound to."""

    devices: dict[str, DeviceState] = field(default_factory=dict)
    key_device: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, devices: dict[str, tuple[str, int]], epochs: dict[str, dict[int, int]]) -> Book:
        """From stored rows: device -> (key, current epoch), device -> {epoch: last seq}."""
        book = cls()
        for name, (key, epoch) in devices.items():
            seen = dict(epochs.get(name, {}))
            seen.setdefault(epoch, 0)
            book.devices[name] = DeviceState(key, epoch, seen)
            book.key_device[key] = name
        return book


@dataclass(frozen=True)
class Incoming:
    """A decoded, schema-valid window: who sent it, its uplink/2 header, its counts/1 body."""

    key: str
    header: dict[str, Any]
    body: dict[str, Any]

    @property
    def device(self) -> str:
        return str(self.body["device"])


@dataclass(frozen=True)
class Outcome:
    """What to answer one window: `kind` stored, duplicate, gap or rejected (`error`)."""

    kind: str
    reply: bytes = b""
    new_epoch: bool = False
    error: Rejected | None = None


def decide(book: Book, w: Incoming, writes: list[tuple[Any, ...]], now: float) -> Outcome:
    """Apply the rules of the module docstring to one window (Rejected: refuse it)."""
    device, key = w.device, w.key
    bound = book.key_device.get(key)
    if bound is not None and bound != device:
        raise Rejected(f"this key sends as device {bound!r}, not {device!r}", "identity")
    epoch, seq, prev = w.header["epoch"], w.header["seq"], w.header["prev"]
    state = book.devices.get(device)
    if state is None:
        state = DeviceState(key, epoch, {epoch: 0})
        book.devices[device] = state
        book.key_device[key] = device
        writes.append(("new", device, key, epoch))
        writes.append(("epoch", device, epoch, now))
    elif state.key != key:
        raise Rejected(f"device {device!r} belongs to another key", "identity")
    new_epoch = False
    if epoch != state.epoch:
        last = state.epochs.get(epoch)
        if last is not None:  # an epoch this device has left behind
            if seq <= last:
                return Outcome("duplicate", schema.ack(epoch, last))
            _interleaving(device, key, state, epoch, seq)
        new_epoch = True  # a restored, restarted or cloned store: a new epoch begins
    if not new_epoch and seq <= state.last_seq:
        return Outcome("duplicate", schema.ack(epoch, state.last_seq))
    if prev is not None and prev != state.last_seq:
        return Outcome("gap", schema.gap(state.epoch, state.last_seq))
    if new_epoch:
        writes.append(("epoch", device, epoch, now))
        log.info("telemetry_epoch_started", device=device, epoch=epoch,
                 previous_epoch=state.epoch, previous_last_seq=state.last_seq)
        state.epoch = epoch
    b, counts = w.body, w.body["counts"]
    writes.append(("win", (device, epoch, seq, b["gate"], b["window_start"], b["window_s"],
                           b["k"], b["epsilon"], now, *(counts[f] for f in COUNT_FIELDS))))
    state.epochs[epoch] = seq
    return Outcome("stored", schema.ack(epoch, seq), new_epoch=new_epoch)


def _interleaving(device: str, key: str, state: DeviceState, epoch: int, seq: int) -> None:
    """A new window of a superseded epoch: two copies of one store are sending."""
    log.error("telemetry_epoch_interleaving", device=device, key=key[:8], epoch=epoch,
              seq=seq, epoch_last_seq=state.epochs[epoch], current_epoch=state.epoch,
              alert="two copies of this device's store are sending (a clone or a "
                    "restored backup beside the original): retire one, re-provision it")
    raise Rejected(f"epoch {epoch} of {device} was superseded by epoch {state.epoch}: "
                   "another copy of this store is sending; retire one copy and "
                   "re-provision it (python -m provisioning init)", "epoch_superseded")


def decide_all(book: Book, windows: list[Incoming], writes: list[tuple[Any, ...]],
               now: float) -> list[Outcome]:
    """`decide` for each window in order; a refusal or a failure answers only its window."""
    out = []
    for w in windows:
        try:
            out.append(decide(book, w, writes, now))
        except Rejected as exc:
            out.append(Outcome("rejected", error=exc))
        except Exception as exc:  # a bug here must not end the collector (or store a part)
            log.error("telemetry_message_failed", key=w.key[:8], error=type(exc).__name__)
            out.append(Outcome("rejected", error=Rejected(
                "the collector failed on this message and stored nothing of it", "internal")))
    return out


def last_marks(writes: list[tuple[Any, ...]]) -> list[tuple[int, str, int]]:
    """(last seq, device, epoch) for each (device, epoch) that gained windows in `writes`."""
    last: dict[tuple[str, int], int] = {}
    for w in writes:
        if w[0] == "win":
            last[(w[1][0], w[1][1])] = w[1][2]
    return [(s, d, e) for (d, e), s in last.items()]
