"""The fleet dashboard in Debian's chromium: `python -m central dashboard` as a real process on
a free port over a SQLite central database; a wrong password, the log-in, the eight uPlot charts
drawn with as many points as the API gives (and its values), a gate's selection, the log-out.
No console error (a Content-Security-Policy violation would be one).

Screenshots are kept as test artefacts in `test-artefacts/central-dashboard/` (ignored by git;
replaced at each run).
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest
from helpers.browser import Shots, chromium_page
from helpers.central_fleet import GATES, PASSWORD, fleet_db

from central.__main__ import main
from central.fleet_data import CHARTS
from foundation.peers import Peer, free_port, python_module

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "test-artefacts" / "central-dashboard"


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/login", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture
def dashboard(tmp_path):
    db = fleet_db(tmp_path / "central.db")
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    assert main(["add-user", "ana", "--role", "viewer", "--db", str(db),
                 "--password-file", str(secret)]) == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    peer = Peer("dashboard", python_module("central", "dashboard", "--db", db, "--bind",
                                           f"127.0.0.1:{port}"),
                tmp_path / "dashboard.log", ready=lambda: _up(url), cwd=ROOT)
    peer.start()
    try:
        yield url
    finally:
        peer.stop()


def _api(page, path: str) -> tuple[int, object]:
    return page.evaluate("""async (p) => { const r = await fetch(p);
        return [r.status, r.status === 200 ? await r.json() : null]; }""", path)


def _charts_ready(page) -> None:
    page.wait_for_selector("body[data-charts=ready]")


def test_log_in_charts_and_log_out_in_chromium(dashboard, tmp_path):
    if ARTEFACTS.exists():
        shutil.rmtree(ARTEFACTS)
    ARTEFACTS.parent.mkdir(exist_ok=True)
    with chromium_page(tmp_path) as page:
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        shot = Shots(page, ARTEFACTS)
        page.goto(dashboard + "/")
        assert page.url == dashboard + "/login"  # the page needs a log-in
        shot("login")

        page.fill("#login-name", "ana")
        page.fill("#login-password", "not the password")
        page.keyboard.press("Enter")
        page.wait_for_selector("#login-error")
        assert "Wrong name or password." in page.inner_text("#login-error")
        assert page.context.cookies() == []
        shot("wrong-password")

        page.fill("#login-password", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(dashboard + "/")
        _charts_ready(page)
        assert page.inner_text("#who") == "ana (viewer)"
        status, series = _api(page, "/api/series?hours=48")
        assert status == 200 and len(series["hours"]) == 3
        assert page.locator("#charts figure.chart").count() == len(CHARTS)
        assert page.locator("#charts figure.chart canvas").count() == len(CHARTS)
        for _, field in CHARTS:
            box = page.locator(f"#chart-{field}")
            assert box.get_attribute("data-points") == str(len(series["hours"]))
            drawn = page.evaluate("(f) => window.fleetCharts[f].data", field)
            assert drawn == [series["hours"], series["series"][field]], field
        size = page.evaluate("() => { const c = document.querySelector('#charts canvas');"
                             " return [c.width, c.height]; }")
        assert size[0] > 100 and size[1] > 100
        assert page.locator("#gates tr").count() == 1 + len(GATES) + 1  # header, gates, fleet
        shot("charts")

        page.select_option("#gate", "LHR.B12")
        page.wait_for_function("() => document.querySelector('#selection').textContent"
                               ".startsWith('LHR.B12')")
        _charts_ready(page)
        status, one = _api(page, "/api/series?hours=48&gate=LHR.B12")
        drawn = page.evaluate("() => window.fleetCharts.temperature_screened.data[1]")
        assert drawn == one["series"]["temperature_screened"] == [120, 120, 120]
        assert page.evaluate("() => window.fleetCharts.not_matched.data[1]") == [None] * 3
        shot("one-gate")

        page.click("#logout")
        page.wait_for_url(dashboard + "/login")
        assert _api(page, "/api/series")[0] == 401
        page.goto(dashboard + "/")
        assert page.url == dashboard + "/login"
        shot("logged-out")
        assert [c for c in console if "Content Security Policy" in c or "Refused" in c] == []
    assert len(list(ARTEFACTS.glob("*.png"))) == 5
