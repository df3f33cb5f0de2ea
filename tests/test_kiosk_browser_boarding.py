"""The kiosk page in real Chromium for issue 14: the board shows the flight boarding ("no flight
set" otherwise) and a supervisor sets and clears it from the keyboard; an agent enrols a
traveller from two photos, each checked on its own."""

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


def test_supervisor_sets_and_clears_now_boarding_by_keyboard(page, live_kiosk, tmp_path):
    env, server = live_kiosk
    shot = Shots(page, tmp_path / "screenshots")
    _log_in(page, server.url, "sup1", PASSWORD)
    page.wait_for_selector("#board-status[data-connected=true]")
    page.wait_for_selector("#boarding-form:not([hidden])")
    assert "No flight set" in page.inner_text("#boarding-now")
    page.focus("#boarding-typed")
    page.keyboard.type("xy123")
    page.keyboard.press("Enter")  # the form submits from the keyboard
    page.wait_for_selector("#boarding[data-source=supervisor]")
    assert page.inner_text("#boarding-now").startswith("Now boarding: XY0123")
    assert env.services.boarding.state().source == "supervisor"
    shot("now-boarding")
    page.focus("#boarding-clear")
    page.keyboard.press("Enter")
    page.wait_for_selector("#boarding[data-source=none]")
    assert "No flight set" in page.inner_text("#boarding-now")
    assert env.services.boarding.scopes() is None


def test_agent_enrols_from_two_photos_and_sees_no_boarding_controls(page, live_kiosk,
                                                                    faces_dir, tmp_path):
    env, server = live_kiosk
    shot = Shots(page, tmp_path / "screenshots")
    _log_in(page, server.url, "agent1", PASSWORD)
    page.fill("#enrol-reference", "ABC123")
    page.fill("#enrol-flight", "XY123")
    page.click("#enrol-reference-next")
    page.click("#consent-accept")
    page.set_input_files("#photo-file", [str(faces_dir / "img1.jpg"),
                                         str(faces_dir / "img2.jpg")])
    page.wait_for_selector("#photo-feedback[data-ok=true]")
    assert "2 good photos" in page.inner_text("#photo-feedback")
    shot("two-photos")
    page.click("#enrol-submit")
    page.wait_for_selector("#enrol-step-receipt:not([hidden])")
    (template,) = env.store.active_templates()
    assert template.scope.startswith("XY0123/")
    page.click("#tab-board")
    page.wait_for_selector("#board-status[data-connected=true]")
    assert page.is_hidden("#boarding-form")  # agents see the flight, not the controls
    assert "No flight set" in page.inner_text("#boarding-now")
