"""The fleet dashboard's own script and style sheet (served as files: the page's
Content-Security-Policy is `default-src 'self'`, so nothing inline runs), and uPlot's files
from the configured assets folder (web/node_modules, installed pinned by `make web`).
"""

from __future__ import annotations

from pathlib import Path

from central.errors import CollectorError

DEFAULT_ASSETS = Path(__file__).resolve().parents[1] / "web" / "node_modules"
UPLOT_FILES = {"uplot.js": "uplot/dist/uPlot.iife.min.js", "uplot.css": "uplot/dist/uPlot.min.css"}
MAX_ASSET_BYTES = 2 * 1024 * 1024


class AssetsMissing(CollectorError):
    """uPlot is not in the assets folder."""


def load_uplot(folder: Path) -> dict[str, bytes]:
    """uPlot's script and style sheet from `folder` (read once, at start)."""
    out: dict[str, bytes] = {}
    for name, rel in UPLOT_FILES.items():
        path = folder / rel
        try:
            if not path.is_file() or path.stat().st_size > MAX_ASSET_BYTES:
                raise OSError("missing")
            out[name] = path.read_bytes()
        except OSError:
            raise AssetsMissing(f"uPlot is missing: {path} is not there; run `make web` (npm ci "
                                "of web/package-lock.json), or give --assets the node_modules "
                                "folder that holds uplot/dist") from None
    return out


SCRIPT = r"""'use strict';
(function () {
  const root = document.getElementById('charts');
  const charts = JSON.parse(root.dataset.charts);
  const sel = {airport: document.getElementById('airport'), gate: document.getElementById('gate'),
               hours: document.getElementById('hours')};
  const made = {};
  window.fleetCharts = made;
  async function json(url) {
    const r = await fetch(url, {credentials: 'same-origin', headers: {Accept: 'application/json'}});
    if (r.status === 401) { window.location.assign('/login'); throw new Error('logged out'); }
    if (!r.ok) throw new Error(url + ': ' + r.status);
    return r.json();
  }
  function option(select, value, text) {
    const o = document.createElement('option');
    o.value = value; o.textContent = text; select.appendChild(o);
  }
  async function places() {
    const p = await json('/api/places');
    p.airports.forEach(a => option(sel.airport, a, a));
    p.gates.forEach(g => option(sel.gate, g.gate, g.gate));
  }
  async function draw() {
    document.body.dataset.charts = 'loading';
    const q = new URLSearchParams({hours: sel.hours.value});
    if (sel.airport.value) q.set('airport', sel.airport.value);
    if (sel.gate.value) q.set('gate', sel.gate.value);
    const s = await json('/api/series?' + q.toString());
    root.replaceChildren();
    for (const key of Object.keys(made)) { made[key].destroy(); delete made[key]; }
    const width = Math.max(320, Math.min(560, root.clientWidth / 2 - 24));
    for (const [title, field] of charts) {
      const box = document.createElement('figure');
      box.className = 'chart'; box.id = 'chart-' + field;
      box.dataset.points = String(s.hours.length);
      root.appendChild(box);
      const opts = {title: title, width: width, height: 200, scales: {x: {time: true}},
                    tzDate: ts => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
                    series: [{}, {label: title, stroke: '#3b6fb6', width: 2,
                                  fill: 'rgba(59,111,182,0.12)', points: {show: true}}]};
      made[field] = new uPlot(opts, [s.hours, s.series[field]], box);
      if (s.hours.length && s.series[field].every(v => v === null)) {
        const note = document.createElement('figcaption');
        note.textContent = 'suppressed (below k) in every hour shown';
        box.appendChild(note);
      }
    }
    document.getElementById('selection').textContent =
      (s.gate || s.airport || 'all airports') + ': ' + s.hours.length + ' hours';
    document.body.dataset.charts = 'ready';
  }
  ['airport', 'gate', 'hours'].forEach(k => sel[k].addEventListener('change', () => {
    if (k === 'airport') sel.gate.value = '';
    draw().catch(e => { document.getElementById('selection').textContent = String(e); });
  }));
  places().then(draw).catch(e => { document.getElementById('selection').textContent = String(e); });
})();
"""

STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#1b2430}
table{border-collapse:collapse;margin:8px 0 24px}
td,th{padding:4px 10px;text-align:right;border-bottom:1px solid #dde}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
tr.total td{font-weight:600;border-top:2px solid #889}tr.silent td{color:#a22}
header{display:flex;gap:16px;align-items:center;justify-content:space-between}
#charts{display:flex;flex-wrap:wrap;gap:16px;margin:8px 0 24px}
figure.chart{margin:0;border:1px solid #dde;padding:4px}
form.login{display:grid;gap:8px;max-width:320px}
form.login input{padding:6px;font:inherit}.error{color:#a22;font-weight:600}
label{margin-right:12px}
"""
