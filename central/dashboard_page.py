"""The fleet dashboard's HTML: the log-in page and the fleet page (tables from the server, the
charts drawn by /static/dashboard.js with uPlot from /api/series). No inline script or style:
the Content-Security-Policy is `default-src 'self'`.
"""

from __future__ import annotations

import html
import json
from typing import Any

from central.fleet_data import CHARTS

SHOWN = ("presented", "matched", "not_matched", "wrong_flight", "gates_opened", "passages",
         "temperature_screened", "referred", "presentation_attacks", "close_contacts",
         "peak_in_view", "faults")
_HEAD = """<!doctype html><html lang=en><head><meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<title>{title}</title><link rel=stylesheet href=/static/dashboard.css>{extra}</head>"""


def login_page(message: str | None = None, name: str = "") -> str:
    error = (f"<p class=error id=login-error role=alert>{html.escape(message)}</p>"
             if message else "")
    return (_HEAD.format(title="consentgate fleet: log in", extra="") + f"""<body>
<h1>consentgate fleet</h1>{error}
<form class=login method=post action=/login>
<label for=login-name>Name</label>
<input id=login-name name=name autocomplete=username required maxlength=64
 value="{html.escape(name)}">
<label for=login-password>Password</label>
<input id=login-password name=password type=password autocomplete=current-password required
 maxlength=1024>
<button type=submit id=login-submit>Log in</button>
</form></body></html>""")


def _cell(value: Any) -> str:
    return f"<td>{html.escape('-' if value is None else str(value))}</td>"


def fleet_page(user: str, role: str, f: dict[str, Any], devs: dict[str, Any]) -> str:
    esc = html.escape
    cols = ("airport", "gate", "devices", "windows", *SHOWN, "suppressed_cells")
    head = "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_cell(g[c]) for c in cols) + "</tr>" for g in f["gates"])
    if f["total"]:
        t = f["total"]
        body += ("<tr class=total><td>fleet</td><td></td>"
                 + "".join(_cell(t[c]) for c in cols[2:]) + "</tr>")
    silent = sum(d["silent"] for d in devs["devices"])
    rows = "".join(f"<tr class={'silent' if d['silent'] else 'ok'}>{_cell(d['device'])}"
                   f"{_cell(d['gate'])}{_cell(d['last_hour'] or 'never')}"
                   f"<td>{'silent' if d['silent'] else 'sending'}</td></tr>"
                   for d in devs["devices"])
    charts = esc(json.dumps([list(c) for c in CHARTS]))
    extra = ("<link rel=stylesheet href=/assets/uplot.css>"
             "<script src=/assets/uplot.js defer></script>"
             "<script src=/static/dashboard.js defer></script>")
    return (_HEAD.format(title="consentgate fleet", extra=extra) + f"""<body>
<header><h1>Fleet, {esc(f['day'] or 'no windows yet')} (UTC)</h1>
<form method=post action=/logout><span id=who>{esc(user)} ({esc(role)})</span>
<button type=submit id=logout>Log out</button></form></header>
<p>Anonymised, k-suppressed counts as central received them; suppressed cells are counted,
not estimated (a gap in a chart, <code>-</code> in a table).</p>
<h2>Per hour</h2>
<p><label>Airport <select id=airport><option value="">all</option></select></label>
<label>Gate <select id=gate><option value="">all</option></select></label>
<label>Last <select id=hours><option value=24>24 hours</option>
<option value=48 selected>48 hours</option><option value=168>7 days</option></select></label>
<span id=selection aria-live=polite></span></p>
<div id=charts data-charts="{charts}"></div>
<h2>Per gate, {esc(f['day'] or '-')}</h2>
<table id=gates><tr>{head}</tr>{body}</table>
<h2>Devices: {len(devs['devices'])}, silent {silent}</h2>
<table id=devices><tr><th>device</th><th>gate</th><th>last hour</th><th>state</th></tr>{rows}
</table></body></html>""")
