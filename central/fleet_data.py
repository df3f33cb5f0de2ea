"""What the fleet dashboard shows, read from either central database (central.db_access).

PostgreSQL: from the roll-ups (`windows_hourly`, `windows_daily`; central.rollups). SQLite (the
embedded collector's file, no roll-ups): the same sums computed from `windows` at read time.
Either way only what central holds: k-suppressed, anonymised counts per gate and device. A sum
over cells that were all suppressed is `None` (shown as a gap or `-`), never a guess; `peak_in_view`
is a maximum, the other counts are sums.

Airports: the wire format carries a gate id only, so a gate id `AIRPORT.GATE` (e.g. `LHR.B12`,
provisioning's `device.gate`) names its airport; a gate id without a `.` is under airport `-`.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from central.db_access import Central
from wire.telemetry import COUNT_FIELDS

# (chart title, count field): the fleet view's charts, in page order
CHARTS: tuple[tuple[str, str], ...] = (
    ("People screened", "temperature_screened"),
    ("Opted-in boardings", "gates_opened"),
    ("Staffed-lane referrals", "not_matched"),
    ("Thermal referrals", "referred"),
    ("Presentation attacks", "presentation_attacks"),
    ("Close contacts", "close_contacts"),
    ("Peak in view", "peak_in_view"),
    ("Faults", "faults"),
)
NO_AIRPORT = "-"
MAX_HOURS = 24 * 31
RECENT_S = 7 * 86400  # /metrics: a gate's latest hour is looked for this far back
_SUMS = ", ".join(f"max({f})" if f == "peak_in_view" else f"sum({f})" for f in COUNT_FIELDS)
_COLS = ", ".join(COUNT_FIELDS)
_NULLS = " + ".join(f"(CASE WHEN {f} IS NULL THEN 1 ELSE 0 END)" for f in COUNT_FIELDS)


def _source(db: Central, span: str) -> str:
    """The per-(device, gate, hour|day) rows: a roll-up table, or computed from SQLite windows."""
    if db.backend == "postgres":
        return "windows_hourly" if span == "hour" else "windows_daily"
    size = 3600 if span == "hour" else 86400
    return (f"(SELECT device, gate, window_start - window_start % {size} AS {span}, "
            f"1 AS windows, {_NULLS} AS suppressed_cells, {_COLS} FROM windows)")


def airport_of(gate: str) -> str:
    return gate.split(".", 1)[0] if "." in gate else NO_AIRPORT


def _where(airport: str | None, gate: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if gate:
        clauses.append("gate = ?")
        params.append(gate)
    if airport == NO_AIRPORT:
        clauses.append("replace(gate, '.', '') = gate")
    elif airport:
        clauses.append("substr(gate, 1, ?) = ?")
        params += [len(airport) + 1, airport + "."]
    return (" AND ".join(clauses) or "1 = 1"), params


def _int(v: Any) -> int | None:
    return None if v is None else int(v)  # sums come as numeric (PostgreSQL) or int


def _iso(ts: int, fmt: str = "%Y-%m-%d") -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime(fmt)


def places(db: Central) -> dict[str, Any]:
    """Every airport and gate that has windows: {"airports": [...], "gates": [{airport, gate}]}."""
    gates = sorted(str(r[0]) for r in db.rows(f"SELECT DISTINCT gate FROM {_source(db, 'day')} g"))
    return {"airports": sorted({airport_of(g) for g in gates}),
            "gates": [{"airport": airport_of(g), "gate": g} for g in gates]}


def series(db: Central, hours: int = 48, airport: str | None = None,
           gate: str | None = None) -> dict[str, Any]:
    """The selection's counts per UTC hour, the last `hours` hours up to the latest hour with
    windows (the selection's): one list per count field, aligned with `hours`."""
    where, params = _where(airport, gate)
    src = _source(db, "hour")
    last = db.rows(f"SELECT max(hour) FROM {src} s WHERE {where}", params)[0][0]
    out: dict[str, Any] = {"airport": airport, "gate": gate, "hours": [], "windows": [],
                           "suppressed_cells": [], "series": {f: [] for f in COUNT_FIELDS}}
    if last is None:
        return out
    rows = db.rows(f"SELECT hour, sum(windows), sum(suppressed_cells), {_SUMS} FROM {src} s "
                   f"WHERE {where} AND hour > ? GROUP BY hour ORDER BY hour",
                   [*params, int(last) - 3600 * hours])
    for hour, windows, suppressed, *counts in rows:
        out["hours"].append(int(hour))
        out["windows"].append(int(windows))
        out["suppressed_cells"].append(int(suppressed))
        for name, value in zip(COUNT_FIELDS, counts, strict=True):
            out["series"][name].append(_int(value))
    return out


def latest_day(db: Central) -> int | None:
    value = db.rows(f"SELECT max(day) FROM {_source(db, 'day')} s")[0][0]
    return None if value is None else int(value)


def fleet(db: Central, day: str | None = None) -> dict[str, Any]:
    """One UTC day (default: the latest with windows) per airport and gate, and the total."""
    if day is None:
        start = latest_day(db)
    else:
        d = dt.date.fromisoformat(day)
        start = int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp())
    if start is None:
        return {"day": None, "gates": [], "total": None}
    rows = db.rows(f"SELECT gate, count(DISTINCT device), sum(windows), sum(suppressed_cells), "
                   f"{_SUMS} FROM {_source(db, 'day')} s WHERE day = ? GROUP BY gate "
                   f"ORDER BY gate", (start,))
    names = ("devices", "windows", "suppressed_cells", *COUNT_FIELDS)
    gates = [{"airport": airport_of(r[0]), "gate": r[0]}
             | {k: _int(v) for k, v in zip(names, r[1:], strict=True)} for r in rows]
    total: dict[str, Any] = {"gates": len(gates)}
    for name in names:
        values = [g[name] for g in gates if g[name] is not None]
        if not values and name in COUNT_FIELDS:  # suppressed at every gate: unknown, not 0
            total[name] = None
        else:
            total[name] = max(values, default=0) if name == "peak_in_view" else sum(values)
    return {"day": _iso(start), "gates": gates, "total": total}


def devices(db: Central, silent_after_s: float = 7200, now: float | None = None
            ) -> dict[str, Any]:
    """Every device with its gate and the last hour it sent windows for."""
    src = _source(db, "hour")
    rows = db.rows(f"SELECT d.device, d.epoch, (SELECT max(hour) FROM {src} h WHERE h.device = "
                   f"d.device), (SELECT gate FROM {src} g WHERE g.device = d.device ORDER BY "
                   f"hour DESC LIMIT 1) FROM devices d ORDER BY d.device")
    now = time.time() if now is None else now
    return {"devices": [{"device": d, "epoch": int(e), "gate": g,
                         "airport": None if g is None else airport_of(g),
                         "last_hour": None if h is None else _iso(int(h), "%Y-%m-%dT%H:00Z"),
                         "silent": h is None or now - (int(h) + 3600) > silent_after_s}
                        for d, e, h, g in rows]}


def gate_totals(db: Central) -> list[dict[str, Any]]:
    """Per gate, every count summed over all the windows central holds (for /metrics), the
    windows and suppressed cells, and the gate's latest hour's `peak_in_view` and its start (for
    gates that sent windows within `RECENT_S` of the fleet's latest hour)."""
    names = ("windows", "suppressed_cells", *COUNT_FIELDS)
    rows = db.rows(f"SELECT gate, sum(windows), sum(suppressed_cells), {_SUMS} "
                   f"FROM {_source(db, 'day')} s GROUP BY gate ORDER BY gate")
    out = [{"airport": airport_of(r[0]), "gate": r[0]}
           | {k: _int(v) for k, v in zip(names, r[1:], strict=True)} for r in rows]
    src = _source(db, "hour")
    last = db.rows(f"SELECT max(hour) FROM {src} s")[0][0]
    since = -1 if last is None else int(last) - RECENT_S  # a bounded range (index on hour)
    latest = {g: (int(h), _int(p)) for g, h, p in db.rows(
        f"SELECT s.gate, s.hour, max(s.peak_in_view) FROM {src} s JOIN (SELECT gate, max(hour) "
        f"AS hour FROM {src} m WHERE hour > ? GROUP BY gate) t ON s.gate = t.gate AND "
        f"s.hour = t.hour GROUP BY s.gate, s.hour", (since,))}
    for g in out:
        g["last_hour"], g["last_hour_peak_in_view"] = latest.get(g["gate"], (None, None))
    return out
