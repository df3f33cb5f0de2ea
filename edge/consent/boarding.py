"""What the gate boards now: one flight (or a listed set), as consent scopes.

A consent's scope names its flight and day the way the kiosk writes it: `XY0123/015` (carrier
and four-digit flight number, optional suffix letter / day of the year), as in the IATA
boarding-pass barcode. `Boarding` holds what the gate boards: a supervisor's choice on the lane
board, else the flights of the schedule file ([lanes] boarding_schedule) whose window holds the
current time, else nothing (every flight boards, as without this module). The gallery asks
`scopes()` at every search and only templates of those scopes can match.

The schedule is a small file, read once at start and validated strictly: JSON (a list of
objects, or {"flights": [...]}) or CSV (header `flight,start,end`), each entry a flight number
and an ISO 8601 start and end (local time unless an offset is given). Nothing here carries
identity: flights and days only.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog

from foundation.clock import Clock
from foundation.errors import ConsentGateError
from wire import bounded_json

MAX_SCHEDULE_BYTES = 64 * 1024
MAX_SCHEDULE_ENTRIES = 200
MAX_WINDOW_S = 12 * 3600
MAX_BOARDING_FLIGHTS = 8
# an airline designator (two letters, a letter and a digit, or three letters), then 1-4 digits
_FLIGHT = re.compile(r"([A-Z]{2,3}|[A-Z][0-9]|[0-9][A-Z])\s*([0-9]{1,4})([A-Z]?)")
_SCOPE = re.compile(r"([A-Z0-9]{2}[A-Z]?[0-9]{4}[A-Z]?)/([0-9]{3})")
Source = Literal["supervisor", "schedule", "none"]
log = structlog.get_logger(__name__)


class BoardingError(ConsentGateError, ValueError):
    """A flight number, a boarding choice or the schedule file is not valid."""


def parse_flight(text: str) -> str:
    """A flight number as scopes spell it: `XY123` -> `XY0123` (suffix letter kept)."""
    m = _FLIGHT.fullmatch(str(text).strip().upper())
    if m is None:
        raise BoardingError(f"{str(text)[:16]!r} is not a flight number: use the carrier code "
                            "and number, e.g. XY123")
    return f"{m[1]}{int(m[2]):04d}{m[3]}"


def flight_scope(flight: str, day: dt.date) -> str:
    """The consent scope of `flight` on `day`: `XY0123/015`."""
    return f"{parse_flight(flight)}/{day.timetuple().tm_yday:03d}"


def parse_scope(scope: str) -> tuple[str, int] | None:
    """(flight, day of year) of a flight scope, or None for another kind of scope."""
    m = _SCOPE.fullmatch(str(scope))
    if m is None or not 1 <= int(m[2]) <= 366:
        return None
    return m[1], int(m[2])


def describe_scope(scope: str, today: dt.date) -> str:
    """`XY0123 15 Jan` for the board: the day of the year read as the nearest such date."""
    parsed = parse_scope(scope)
    if parsed is None:
        return scope
    flight, doy = parsed
    dates = []
    for year in (today.year - 1, today.year, today.year + 1):
        if doy <= 365 or (dt.date(year, 12, 31).timetuple().tm_yday == 366):
            dates.append(dt.date(year, 1, 1) + dt.timedelta(days=doy - 1))
    day = min(dates, key=lambda d: abs((d - today).days))
    return f"{flight} {day:%d %b}"


# ------------------------------------------------------------------------------ the schedule
@dataclass(frozen=True)
class ScheduledFlight:
    flight: str  # canonical flight number
    start: float  # epoch seconds
    end: float
    scope: str  # flight_scope(flight, local date of start)


def _when(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 32:
        raise BoardingError(f"{where}: give the time as ISO 8601 text, e.g. 2027-01-15T09:30")
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise BoardingError(f"{where}: {value!r} is not an ISO 8601 time, e.g. "
                            "2027-01-15T09:30") from None
    return when if when.tzinfo is not None else when.astimezone()  # naive: local time


def _entry(raw: Any, where: str) -> ScheduledFlight:
    if not isinstance(raw, dict) or set(raw) != {"flight", "start", "end"}:
        raise BoardingError(f"{where}: each entry has exactly flight, start and end")
    if not isinstance(raw["flight"], str):
        raise BoardingError(f"{where}: the flight must be text, e.g. XY123")
    try:
        flight = parse_flight(raw["flight"])
    except BoardingError as exc:
        raise BoardingError(f"{where}: {exc}") from None
    start, end = _when(raw["start"], f"{where} start"), _when(raw["end"], f"{where} end")
    if not 0 < (end - start).total_seconds() <= MAX_WINDOW_S:
        raise BoardingError(f"{where}: the end must come after the start, at most "
                            f"{MAX_WINDOW_S // 3600} hours later")
    local_day = start.astimezone().date()
    return ScheduledFlight(flight, start.timestamp(), end.timestamp(),
                           flight_scope(flight, local_day))


def parse_schedule(data: bytes, kind: Literal["json", "csv"]) -> tuple[ScheduledFlight, ...]:
    """Validate a schedule's bytes; BoardingError names the first bad entry."""
    if len(data) > MAX_SCHEDULE_BYTES:
        raise BoardingError(f"the schedule is larger than {MAX_SCHEDULE_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BoardingError("the schedule is not UTF-8 text") from None
    rows: list[Any]
    if kind == "json":
        try:
            doc = bounded_json.loads(text.encode("utf-8"), max_bytes=MAX_SCHEDULE_BYTES,
                                     max_depth=3)
        except bounded_json.JSONLimitError as exc:
            raise BoardingError(f"the schedule is not valid JSON: {exc}") from None
        if isinstance(doc, dict) and set(doc) == {"flights"}:
            doc = doc["flights"]
        if not isinstance(doc, list):
            raise BoardingError('the schedule must be a list of entries or {"flights": [...]}')
        rows = doc
    else:
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != \
                ["flight", "start", "end"]:
            raise BoardingError("the schedule's first line must be: flight,start,end")
        rows = [{k.strip(): v for k, v in row.items()} if None not in row else row
                for row in reader]
    if len(rows) > MAX_SCHEDULE_ENTRIES:
        raise BoardingError(f"the schedule has {len(rows)} entries, more than "
                            f"{MAX_SCHEDULE_ENTRIES}")
    return tuple(_entry(raw, f"schedule entry {i}") for i, raw in enumerate(rows, 1))


def load_schedule(path: Path) -> tuple[ScheduledFlight, ...]:
    """Read and validate the schedule file (.json or .csv)."""
    path = Path(path)
    kind: Literal["json", "csv"]
    if path.suffix.lower() == ".json":
        kind = "json"
    elif path.suffix.lower() == ".csv":
        kind = "csv"
    else:
        raise BoardingError(f"boarding schedule {path}: name a .json or .csv file")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SCHEDULE_BYTES + 1)
    except OSError as exc:
        raise BoardingError(f"boarding schedule {path} cannot be read ({exc.strerror}): fix "
                            "[lanes] boarding_schedule") from None
    try:
        return parse_schedule(data, kind)
    except BoardingError as exc:
        raise BoardingError(f"boarding schedule {path}: {exc}") from None


# ------------------------------------------------------------------------------ the holder
@dataclass(frozen=True)
class BoardingState:
    scopes: tuple[str, ...]  # empty: no flight set, every flight boards
    source: Source


class Boarding:
    """What the gate boards now (thread-safe): the supervisor's choice, else the schedule."""

    def __init__(self, clock: Clock, schedule: Sequence[ScheduledFlight] = (), *,
                 poll_s: float = 1.0) -> None:
        self._clock = clock
        self._schedule = tuple(schedule)
        self._lock = threading.Lock()
        self._manual: tuple[str, ...] | None = None
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._poll_s = float(poll_s)
        self._polled = -float("inf")
        self._last: BoardingState | None = None

    @property
    def schedule(self) -> tuple[ScheduledFlight, ...]:
        return self._schedule

    def state(self) -> BoardingState:
        with self._lock:
            manual = self._manual
        if manual:
            return BoardingState(manual, "supervisor")
        now = self._clock.now()
        scopes = tuple(dict.fromkeys(f.scope for f in self._schedule if f.start <= now < f.end))
        return BoardingState(scopes, "schedule") if scopes else BoardingState((), "none")

    def scopes(self) -> frozenset[str] | None:
        """The gallery's filter: the scopes that board now, or None (every flight)."""
        scopes = self.state().scopes
        return frozenset(scopes) if scopes else None

    def set_scopes(self, scopes: Iterable[str]) -> BoardingState:
        """The supervisor's choice (flight scopes, at most 8); empty clears it."""
        chosen = tuple(dict.fromkeys(str(s) for s in scopes))
        if len(chosen) > MAX_BOARDING_FLIGHTS:
            raise BoardingError(f"board at most {MAX_BOARDING_FLIGHTS} flights at once")
        for scope in chosen:
            if parse_scope(scope) is None:
                raise BoardingError(f"{scope[:16]!r} is not a flight and day")
        with self._lock:
            self._manual = chosen or None
        self.poll(force=True)
        return self.state()

    def summary(self) -> dict[str, Any]:
        """What the lane board shows: the flights boarding and who set them."""
        state = self.state()
        today = dt.datetime.fromtimestamp(self._clock.now()).date()
        flights = [describe_scope(s, today) for s in state.scopes]
        message = ("now boarding " + ", ".join(flights) if flights else
                   "no flight set: travellers of every flight can board")
        return {"source": state.source, "scopes": list(state.scopes), "flights": flights,
                "message": message}

    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """`callback(summary())` runs whenever what boards changes (see `poll`)."""
        with self._lock:
            self._listeners.append(callback)

    def poll(self, force: bool = False) -> None:
        """Tell the listeners when a schedule window opened or closed (called often, e.g. by
        the inference loop; it looks at most every `poll_s` seconds unless forced)."""
        mono = self._clock.monotonic()
        if not force and mono - self._polled < self._poll_s:
            return
        self._polled = mono
        state = self.state()
        with self._lock:
            if state == self._last:
                return
            self._last = state
            listeners = list(self._listeners)
        summary = self.summary()
        log.info("boarding_changed", source=state.source, scopes=len(state.scopes))
        for callback in listeners:
            try:
                callback(summary)
            except Exception:  # a failing listener (the board) never stops the caller
                log.exception("boarding_listener_failed")
