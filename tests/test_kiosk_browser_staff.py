"""The staff screen in real Chromium (issue 17 item 5): only a supervisor sees the Staff tab; from
the keyboard alone they unlock a locked-out agent (so "ask a supervisor" is true), add a staff
member, disable and enable an account and reset a password; an agent never sees the tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.browser import Shots, chromium_page
from helpers.browser import log_in as _log_in
from helpers.kiosk import PASSWORD

from edge.kiosk.passwords import verify_password

pytestmark = pytest.mark.browser

NEW_PASSWORD = "typed on the staff screen"


@pytest.fixture
def page(tmp_path: Path):
    with chromium_page(tmp_path) as pg:
        yield pg


def _press(page, selector: str) -> None:
    page.focus(selector)
    page.keyboard.press("Enter")


def test_supervisor_administers_staff_by_keyboard(page, live_kiosk, tmp_path):
    env, server = live_kiosk
    throttle = env.client.app.state.kiosk.throttle
    for _ in range(env.services.settings.kiosk.max_login_failures):
        throttle.failure("agent1", "10.0.0.7|-")  # the agent mistyped at their screen
    assert throttle.retry_after("agent1", "10.0.0.7|-") > 0
    shot = Shots(page, tmp_path / "screenshots")
    _log_in(page, server.url, "sup1", PASSWORD)
    page.wait_for_selector("#tab-staff:not([hidden])")
    _press(page, "#tab-staff")
    page.wait_for_selector("#staff-view[data-loaded=true]")
    assert page.is_hidden("#board-view")
    row = "#staff-rows tr[data-staff=agent1]"
    page.wait_for_selector(f"{row}[data-locked=true]")
    assert "locked out" in page.inner_text(f"{row} .staff-state")
    assert page.get_attribute(f"{row} button[data-action=unlock]", "aria-label") == \
        "Unlock agent1"
    shot("locked-out")
    _press(page, f"{row} button[data-action=unlock]")
    page.wait_for_selector(f"{row}[data-locked=false]")
    assert "may log in again" in page.inner_text("#staff-result")
    assert throttle.retry_after("agent1", "10.0.0.7|-") == 0

    # add a staff member from the keyboard: type, Tab between fields, Enter submits
    page.focus("#staff-add-name")
    page.keyboard.type("night.agent")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.type(NEW_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#staff-rows tr[data-staff='night.agent']")
    assert env.store.staff.get("night.agent").role == "agent"
    assert page.input_value("#staff-add-password") == ""  # the password does not stay
    shot("added")

    _press(page, "#staff-rows tr[data-staff='night.agent'] button[data-action=disable]")
    page.wait_for_selector("#staff-rows tr[data-staff='night.agent'][data-disabled=true]")
    assert env.store.staff.get("night.agent").disabled
    _press(page, "#staff-rows tr[data-staff='night.agent'] button[data-action=enable]")
    page.wait_for_selector("#staff-rows tr[data-staff='night.agent'][data-disabled=false]")
    assert page.locator("#staff-rows tr[data-staff=sup1] button[data-action=disable]").count() == 0

    page.select_option("#staff-password-name", "agent1")
    page.focus("#staff-password-new")
    page.keyboard.type("too short")
    page.keyboard.press("Enter")  # the browser's own minlength check keeps it back
    assert verify_password(PASSWORD, env.store.staff.get("agent1").password_hash)
    page.fill("#staff-password-new", NEW_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("#staff-result:has-text('has a new password')")
    assert verify_password(NEW_PASSWORD, env.store.staff.get("agent1").password_hash)
    shot("password-reset")

    _press(page, "#logout")
    page.wait_for_selector("#login-view:not([hidden])")
    assert page.is_hidden("#tab-staff")
    assert page.locator("#staff-rows tr").count() == 0  # nothing stays for the next person


def test_agent_sees_no_staff_tab(page, live_kiosk):
    _env, server = live_kiosk
    _log_in(page, server.url, "agent1", PASSWORD)
    page.wait_for_selector("#enrol-view:not([hidden])")
    assert page.is_hidden("#tab-staff")
    assert page.is_hidden("#staff-view")
