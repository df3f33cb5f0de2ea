"""The fleet dashboard: one read-only page and its JSON, from the PostgreSQL roll-ups only.

`create_app(dsn)` is a FastAPI app (served by `python -m central dashboard`):

- `GET /` the page: the fleet's totals for one UTC day per gate (from `windows_daily`), the
  last 24 hours of the fleet as bars (from `windows_hourly`), and every device with the last
  hour it sent windows for (flagged silent after `silent_after_s`);
- `GET /api/fleet?day=YYYY-MM-DD`, `GET /api/hourly?hours=24`, `GET /api/devices`: the same as
  JSON. Without `day`, the latest day that has windows.

What it shows is what central holds: k-suppressed, anonymised counts per gate and device; the
suppressed cells are counted, never guessed. Nothing here writes, except the optional roll-up
refresh of `python -m central dashboard --refresh-every S`.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from central.pg_store import connect
from wire.telemetry import COUNT_FIELDS

SHOWN = ("presented", "matched", "not_matched", "wrong_flight", "gates_opened", "passages",
         "tailgating_alarms", "referred", "faults")
BARS = "passages"  # the hourly bars
_SUMS = ", ".join(f"max({f})" if f == "peak_in_view" else f"sum({f})" for f in COUNT_FIELDS)


def _day_start(day: str | None, conn: Any) -> int | None:
    if day is None:
        row = conn.execute("SELECT max(day) FROM windows_daily").fetchone()
        return None if row is None or row[0] is None else int(row[0])
    try:
        d = dt.date.fromisoformat(day)
    except ValueError:
        raise HTTPException(422, "day: give YYYY-MM-DD") from None
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp())


def _iso(ts: int, fmt: str = "%Y-%m-%d") -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime(fmt)


def fleet(conn: Any, day: str | None = None) -> dict[str, Any]:
    start = _day_start(day, conn)
    if start is None:
        return {"day": None, "gates": [], "total": None}
    rows = conn.execute(f"SELECT gate, count(DISTINCT device), sum(windows), "
                        f"sum(suppressed_cells), {_SUMS} FROM windows_daily WHERE day = %s "
                        f"GROUP BY gate ORDER BY gate", (start,)).fetchall()
    names = ("gate", "devices", "windows", "suppressed_cells", *COUNT_FIELDS)
    gates: list[dict[str, Any]] = [
        {k: v if v is None or isinstance(v, str) else int(v)  # sums come as numeric
         for k, v in zip(names, r, strict=True)} for r in rows]
    total: dict[str, Any] = {"gates": len(gates)}
    for name in names[1:]:
        values: list[int] = [g[name] for g in gates if g[name] is not None]
        total[name] = (max(values, default=0) if name == "peak_in_view"
                       else sum(values))
    return {"day": _iso(start), "gates": gates, "total": total}


def hourly(conn: Any, hours: int = 24) -> dict[str, Any]:
    row = conn.execute("SELECT max(hour) FROM windows_hourly").fetchone()
    if row is None or row[0] is None:
        return {"hours": []}
    last = int(row[0])
    rows = conn.execute(f"SELECT hour, sum(windows), {_SUMS} FROM windows_hourly "
                        f"WHERE hour > %s GROUP BY hour ORDER BY hour",
                        (last - 3600 * hours,)).fetchall()
    names = ("hour", "windows", *COUNT_FIELDS)
    return {"hours": [{k: (None if v is None else int(v)) for k, v in zip(names, r, strict=True)}
                      for r in rows]}


def devices(conn: Any, silent_after_s: float = 7200, now: float | None = None
            ) -> dict[str, Any]:
    rows = conn.execute("SELECT d.device, d.epoch, h.hour, h.gate FROM devices d LEFT JOIN "
                        "LATERAL (SELECT hour, gate FROM windows_hourly w WHERE w.device = "
                        "d.device ORDER BY hour DESC LIMIT 1) h ON true ORDER BY d.device"
                        ).fetchall()
    now = time.time() if now is None else now
    return {"devices": [{"device": d, "epoch": int(e), "gate": g,
                         "last_hour": None if h is None else _iso(int(h), "%Y-%m-%dT%H:00Z"),
                         "silent": h is None or now - (int(h) + 3600) > silent_after_s}
                        for d, e, h, g in rows]}


def page(f: dict[str, Any], hrs: dict[str, Any], devs: dict[str, Any]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in ("gate", "devices", "windows",
                                                                  *SHOWN, "suppressed_cells"))
    body = "".join("<tr>" + "".join(f"<td>{esc(str(g[c] if g[c] is not None else '-'))}</td>"
                                    for c in ("gate", "devices", "windows", *SHOWN,
                                              "suppressed_cells")) + "</tr>" for g in f["gates"])
    if f["total"]:
        t = f["total"]
        body += ("<tr class=total><td>fleet</td>" + "".join(
            f"<td>{t[c]}</td>" for c in ("devices", "windows", *SHOWN, "suppressed_cells"))
            + "</tr>")
    peak = max((h[BARS] or 0 for h in hrs["hours"]), default=0) or 1
    bars = "".join(
        f"<div class=bar title='{esc(_iso(h['hour'], '%H:00Z'))}: {h[BARS] or 0}'>"
        f"<span style='height:{100 * (h[BARS] or 0) / peak:.0f}%'></span>"
        f"<small>{esc(_iso(h['hour'], '%H'))}</small></div>" for h in hrs["hours"])
    silent = sum(d["silent"] for d in devs["devices"])
    rows = "".join(f"<tr class={'silent' if d['silent'] else 'ok'}><td>{esc(d['device'])}</td>"
                   f"<td>{esc(d['gate'] or '-')}</td><td>{esc(d['last_hour'] or 'never')}</td>"
                   f"<td>{'silent' if d['silent'] else 'sending'}</td></tr>"
                   for d in devs["devices"])
    return f"""<!doctype html><html lang=en><head><meta charset=utf-8>
<title>consentgate fleet</title><style>
body{{font:14px system-ui,sans-serif;margin:24px;color:#1b2430}}
table{{border-collapse:collapse;margin:8px 0 24px}}td,th{{padding:4px 10px;text-align:right;
border-bottom:1px solid #dde}}td:first-child,th:first-child{{text-align:left}}
tr.total td{{font-weight:600;border-top:2px solid #889}}tr.silent td{{color:#a22}}
.bars{{display:flex;gap:3px;align-items:flex-end;height:140px;margin:8px 0 24px}}
.bar{{width:22px;height:100%;display:flex;flex-direction:column;justify-content:flex-end}}
.bar span{{background:#3b6fb6;display:block}}.bar small{{text-align:center;color:#667}}
</style></head><body>
<h1>Fleet, {esc(f['day'] or 'no windows yet')} (UTC)</h1>
<p>Anonymised, k-suppressed counts as central received them; suppressed cells are counted,
not estimated.</p>
<table><tr>{head}</tr>{body}</table>
<h2>{esc(BARS)} per hour, last {len(hrs['hours'])} hours</h2><div class=bars>{bars}</div>
<h2>Devices: {len(devs['devices'])}, silent {silent}</h2>
<table><tr><th>device</th><th>gate</th><th>last hour</th><th>state</th></tr>{rows}</table>
</body></html>"""


def create_app(dsn: str, *, silent_after_s: float = 7200) -> FastAPI:
    app = FastAPI(title="consentgate fleet dashboard", docs_url=None, redoc_url=None)

    @app.get("/api/fleet")
    def api_fleet(day: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$")
                  ) -> dict[str, Any]:
        with connect(dsn) as conn:
            return fleet(conn, day)

    @app.get("/api/hourly")
    def api_hourly(hours: int = Query(24, ge=1, le=24 * 31)) -> dict[str, Any]:
        with connect(dsn) as conn:
            return hourly(conn, hours)

    @app.get("/api/devices")
    def api_devices() -> dict[str, Any]:
        with connect(dsn) as conn:
            return devices(conn, silent_after_s)

    @app.get("/", response_class=HTMLResponse)
    def index(day: str | None = Query(None, pattern=r"^\d{4}-\d{2}-\d{2}$")) -> str:
        with connect(dsn) as conn:
            return page(fleet(conn, day), hourly(conn), devices(conn, silent_after_s))

    return app
