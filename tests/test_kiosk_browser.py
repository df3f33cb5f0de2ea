"""The kiosk page in real Chromium (Debian's, driven by Playwright; no browser download).

Log in, enrol a traveller from a photo with consent, see the receipt, watch the lane board update
live, override a lane as supervisor, withdraw, and refuse. A screenshot of each step is saved
under the test's tmp dir.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.browser import Shots, chromium_page
from helpers.browser import log_in as _log_in
from helpers.kiosk import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def page(tmp_path: Path):
    with chromium_page(tmp_path) as pg:
        yield pg


def log_in(page, url: str, name: str) -> None:
    _log_in(page, url, name, PASSWORD)


def test_agent_enrols_withdraws_and_refusal_stores_nothing(page, live_kiosk, faces_dir,
                                                           tmp_path):
    env, server = live_kiosk
    shot = Shots(page, tmp_path / "screenshots")

    page.goto(server.url + "/")
    page.wait_for_selector("#login-view:not([hidden])")
    shot("login")
    page.fill("#login-staff", "agent1")
    page.fill("#login-password", "wrong-password-1")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "wrong staff name or password" in page.inner_text("#login-error").lower()
    shot("login-failed")
    log_in(page, server.url, "agent1")
    assert page.inner_text("#who-role") == "agent"
    assert page.is_hidden("#tab-board") is False
    shot("logged-in")

    # enrolment: reference -> consent -> photo with feedback -> receipt
    page.fill("#enrol-reference", "ABC123")
    page.click("#enrol-reference-next")
    page.wait_for_selector("#enrol-step-consent:not([hidden])")
    text = page.inner_text("#consent-text")
    assert "staffed lane" in text and "withdraw" in text.lower()
    shot("consent-text")
    page.click("#consent-accept")
    page.wait_for_selector("#enrol-step-photo:not([hidden])")
    page.set_input_files("#photo-file", str(faces_dir / "img1.jpg"))
    page.wait_for_selector("#photo-feedback[data-ok=true]")
    assert page.is_enabled("#enrol-submit")
    shot("photo-accepted")
    page.click("#enrol-submit")
    page.wait_for_selector("#enrol-step-receipt:not([hidden])")
    code = page.inner_text("#receipt-code")
    assert len(code.replace("-", "")) == 12
    assert page.locator("img").count() == 0  # no image is ever shown
    shot("receipt")
    assert len(env.store.active_templates()) == 1

    # a poor photo gets advice and cannot be enrolled
    page.click("#enrol-done")
    page.fill("#enrol-reference", "XYZ789")
    page.click("#enrol-reference-next")
    page.click("#consent-accept")
    page.set_input_files("#photo-file", str(faces_dir / "couple.jpg"))
    page.wait_for_selector("#photo-feedback[data-kind=bad]")
    assert "more than one face" in page.inner_text("#photo-feedback").lower()
    assert page.is_disabled("#enrol-submit")
    shot("photo-refused")
    page.click("#enrol-cancel")

    # refusal: one tap, nothing stored
    page.fill("#enrol-reference", "XYZ789")
    page.click("#enrol-reference-next")
    page.click("#consent-refuse")
    page.wait_for_selector("#enrol-step-refused:not([hidden])")
    shot("refused")
    assert env.store.stats()["active_consents"] == 1

    # withdrawal with the code from the receipt
    page.click("#tab-withdraw")
    page.check("#withdraw-kind-code")
    page.fill("#withdraw-value", code)
    page.click("#withdraw-submit")
    page.wait_for_selector("#withdraw-result[data-result=withdrawn]")
    shot("withdrawn")
    assert env.store.active_templates() == []
    page.fill("#withdraw-value", code)
    page.click("#withdraw-submit")
    page.wait_for_selector("#withdraw-result[data-result=not_found]")

    # today's counts on the board
    page.click("#tab-board")
    page.wait_for_selector("#board-status[data-connected=true]")
    page.wait_for_selector("#count-enrolled[data-count='1']")
    page.wait_for_selector("#count-refused[data-count='1']")
    page.wait_for_selector("#count-withdrawn[data-count='1']")
    assert page.locator("#lane-A button").count() == 0  # agents get no override buttons
    shot("board-agent")

    page.click("#logout")
    page.wait_for_selector("#login-view:not([hidden])")

    # the next person on the same screen gets the board of their own role: a supervisor
    # logging in after an agent sees the lane controls the agent's board had no room for
    log_in(page, server.url, "sup1")
    page.wait_for_selector("#board-status[data-connected=true]")
    page.wait_for_selector("#lane-A-open")
    assert page.input_value("#withdraw-value") == ""
    assert page.inner_text("#withdraw-result") == ""


def test_supervisor_sees_live_lane_states_and_overrides(page, live_kiosk, tmp_path):
    env, server = live_kiosk
    shot = Shots(page, tmp_path / "screenshots")
    log_in(page, server.url, "sup1")
    page.wait_for_selector("#board-view:not([hidden])")  # supervisors start on the board
    page.wait_for_selector("#board-status[data-connected=true]")
    page.wait_for_selector("#lane-A[data-state=idle]")
    shot("board-idle")
    # large touch targets: every visible button is at least 48 px tall and wide
    sizes = page.eval_on_selector_all(
        "button", "els => els.filter(e => e.offsetParent !== null)"
                  ".map(e => [e.id, e.getBoundingClientRect().width, "
                  "e.getBoundingClientRect().height])")
    assert len(sizes) >= 8
    assert all(w >= 48 and h >= 48 for _, w, h in sizes), sizes
    # keyboard-operable: Tab reaches the lane controls
    page.focus("#reason-A")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "lane-A-open"

    env.board.publish_state("A", "granted", "gate open")
    page.wait_for_selector("#lane-A[data-state=granted]")
    assert page.inner_text("#lane-A-state") == "Boarding: gate open"
    env.board.publish_state("B", "refer")
    env.board.publish_alert("B", "refer", "refer for secondary screening")
    page.wait_for_selector("#alerts li[data-kind=refer]")
    assert "secondary screening" in page.inner_text("#alerts")
    shot("board-live")
    # a grant and a walk-through are two different counts, with words that say so
    env.board.record_count("granted")
    page.wait_for_selector("#count-granted[data-count='1']")
    assert page.inner_text("#count-granted .bar-name") == "Gate opened by face"
    assert page.inner_text("#count-boarded .bar-name") == "Boarded by face"
    assert page.get_attribute("#count-boarded", "data-count") == "0"

    page.click("#lane-A-open")  # no reason yet: refused on the page
    page.wait_for_selector("#message:not([hidden])")
    assert env.gate.calls == []
    page.fill("#reason-A", "wheelchair user")
    page.click("#lane-A-open")
    page.wait_for_selector("#alerts li[data-kind=override]")
    assert env.gate.calls == [("override", "A", "open", "wheelchair user", "sup1")]
    shot("override")
