"""Accessibility of every kiosk screen in real Chromium (Debian's, via Playwright): axe-core
(pinned in web/package.json, installed by `make web`) is injected into each screen (log-in, the
enrolment steps with the consent text in every language, the photo with its face preview, the
receipt, the refusal, withdrawal, the lane board of an agent and of a supervisor, the staff
screen, and a token gate's choice, receipt and scanner field) and must find 0 serious or
critical violations; and an enrolment is completed with the keyboard alone (Tab, Enter, Space:
no click anywhere).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.browser import chromium_page
from helpers.browser import log_in as _log_in
from helpers.kiosk import PASSWORD

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "web" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = """async () => {
  const r = await axe.run(document, { resultTypes: ["violations"] });
  return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")) }));
}"""


@pytest.fixture
def page(tmp_path: Path):
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make web` (npm ci of the pinned axe-core)")
    with chromium_page(tmp_path) as pg:
        pg.add_init_script(path=str(AXE))  # by the browser, not the page: CSP stays as it is
        yield pg


class Audit:
    """Runs axe on the screen now shown; collects each screen's serious/critical findings."""

    def __init__(self, page) -> None:
        self.page, self.screens, self.found = page, [], {}

    def __call__(self, screen: str) -> None:
        assert self.page.evaluate("typeof axe") == "object", "axe-core was not injected"
        self.screens.append(screen)
        violations = self.page.evaluate(SERIOUS)
        if violations:
            self.found[screen] = violations

    def assert_clean(self, expected: int) -> None:
        assert len(self.screens) == expected, self.screens
        assert self.found == {}, self.found


def log_in(page, url: str, name: str) -> None:
    _log_in(page, url, name, PASSWORD)


def test_every_kiosk_screen_has_no_serious_axe_violation(page, live_kiosk, faces_dir):
    env, server = live_kiosk
    audit = Audit(page)
    page.goto(server.url + "/")
    page.wait_for_selector("#login-view:not([hidden])")
    # the audit can fail: a button without a name and grey-on-grey text are caught
    page.evaluate("""() => { const b = document.createElement("button"); b.id = "canary";
      const p = document.createElement("p"); p.id = "canary-text"; p.textContent = "faint";
      p.style.color = "#bbb"; p.style.background = "#fff"; document.body.append(b, p); }""")
    assert {v["id"] for v in page.evaluate(SERIOUS)} >= {"button-name", "color-contrast"}
    page.evaluate("() => { document.getElementById('canary').remove(); "
                  "document.getElementById('canary-text').remove(); }")
    audit("log-in")
    page.fill("#login-staff", "agent1")
    page.fill("#login-password", "wrong-password-1")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:not([hidden])")
    audit("log-in refused")
    log_in(page, server.url, "agent1")
    page.wait_for_selector("#enrol-view[data-step=reference]")
    audit("enrol: reference")
    page.fill("#enrol-reference", "12")
    page.click("#enrol-reference-next")
    page.wait_for_selector("#reference-error:not([hidden])")
    audit("enrol: reference refused")
    page.fill("#enrol-reference", "ABC123")
    page.click("#enrol-reference-next")
    page.wait_for_selector("#enrol-view[data-step=consent]")
    for lang in ("en", "fr", "de"):
        page.click(f"#lang-{lang}")
        page.wait_for_selector(f"#consent-text[data-language={lang}]")
        audit(f"enrol: consent ({lang})")
    page.click("#lang-en")
    page.wait_for_selector("#consent-text[data-language=en]")
    page.click("#consent-accept")
    page.wait_for_selector("#enrol-view[data-step=photo]")
    audit("enrol: photo")
    page.set_input_files("#photo-file", str(faces_dir / "img1.jpg"))
    page.wait_for_selector("#photo-feedback[data-ok=true]")
    page.wait_for_selector("#photo-preview canvas")
    audit("enrol: photo with preview")
    page.click("#enrol-submit")
    page.wait_for_selector("#enrol-view[data-step=receipt]")
    audit("enrol: receipt")
    page.click("#enrol-done")
    page.fill("#enrol-reference", "XYZ789")
    page.click("#enrol-reference-next")
    page.wait_for_selector("#enrol-view[data-step=consent]")
    page.click("#consent-refuse")
    page.wait_for_selector("#enrol-view[data-step=refused]")
    audit("enrol: refused")

    page.click("#tab-withdraw")
    page.wait_for_selector("#withdraw-view:not([hidden])")
    audit("withdraw")
    page.fill("#withdraw-value", "ABC123")
    page.click("#withdraw-submit")
    page.wait_for_selector("#withdraw-result[data-result=withdrawn]")
    audit("withdraw: done")

    page.click("#tab-board")
    page.wait_for_selector("#board-status[data-connected=true]")
    env.board.publish_state("A", "granted", "gate open")
    env.board.publish_alert("B", "refer", "refer for secondary screening")
    page.wait_for_selector("#alerts li[data-kind=refer]")
    audit("lane board (agent)")
    page.click("#logout")
    page.wait_for_selector("#login-view:not([hidden])")
    log_in(page, server.url, "sup1")
    page.wait_for_selector("#lane-A-open")
    audit("lane board (supervisor)")
    page.click("#tab-staff")
    page.wait_for_selector("#staff-view[data-loaded=true]")
    audit("staff accounts (supervisor)")
    audit.assert_clean(16)


def test_token_screens_have_no_serious_axe_violation(page, both_gate, faces_dir):
    _env, server = both_gate
    audit = Audit(page)
    log_in(page, server.url, "agent1")
    page.fill("#enrol-reference", "ABC123")
    page.click("#enrol-reference-next")
    page.wait_for_selector("#consent-accept-token:not([hidden])")
    audit("token: consent choice (en)")
    page.click("#lang-fr")
    page.wait_for_selector("#consent-text[data-language=fr]")
    audit("token: consent choice (fr)")
    page.click("#consent-accept-token")
    page.set_input_files("#photo-file", str(faces_dir / "img1.jpg"))
    page.wait_for_selector("#photo-feedback[data-ok=true]")
    page.click("#enrol-submit")
    page.wait_for_selector("#receipt-token:not([hidden])")
    page.wait_for_selector("#receipt-qr img")
    assert page.get_attribute("#enrol-step-receipt", "lang") == "fr"
    assert "clé d'embarquement" in page.inner_text("#receipt-message")
    audit("token: receipt with QR code (fr)")
    page.click("#enrol-done")
    page.click("#tab-board")
    page.wait_for_selector("#token-form:not([hidden])")
    page.wait_for_selector("#board-status[data-connected=true]")
    audit("token: lane board with the scanner field")
    audit.assert_clean(4)


def test_an_enrolment_by_keyboard_alone(page, live_kiosk, faces_dir):
    """Tab, Enter and Space only (the file chooser opens from the keyboard; Playwright answers
    it as the operating system's dialog would); the traveller picks German by keyboard."""
    env, server = live_kiosk
    page.goto(server.url + "/")
    page.wait_for_selector("#login-view:not([hidden])")
    page.wait_for_selector("#login-staff:focus")
    keys = page.keyboard

    def focused() -> str:
        return str(page.evaluate("document.activeElement.id"))

    def tab_to(element_id: str, limit: int = 25) -> None:
        for _ in range(limit):
            if focused() == element_id:
                return
            keys.press("Tab")
        raise AssertionError(f"Tab never reached #{element_id} (stuck at #{focused()})")

    keys.type("agent1")
    keys.press("Tab")
    keys.type(PASSWORD)
    keys.press("Enter")
    page.wait_for_selector("#enrol-view[data-step=reference]")
    page.wait_for_selector("#enrol-reference:focus")
    keys.type("12")
    keys.press("Enter")
    page.wait_for_selector("#reference-error:not([hidden])")
    assert page.evaluate("document.querySelector('#enrol-view').dataset.step") == "reference"
    assert focused() == "enrol-reference"
    keys.press("Control+A")
    keys.type("ABC123")
    keys.press("Enter")
    page.wait_for_selector("#enrol-view[data-step=consent]")
    keys.press("Shift+Tab")  # the language buttons come before the text
    tab_to("lang-de")
    keys.press("Space")
    page.wait_for_selector("#consent-text[data-language=de]")
    tab_to("consent-back")  # Back by keyboard, then forward again
    keys.press("Enter")
    page.wait_for_selector("#enrol-view[data-step=reference]")
    assert focused() == "enrol-reference" and page.input_value("#enrol-reference") == "ABC123"
    keys.press("Enter")
    page.wait_for_selector("#enrol-view[data-step=consent]")
    tab_to("lang-de")
    keys.press("Enter")
    page.wait_for_selector("#consent-text[data-language=de]")
    assert page.inner_text("#consent-accept") == "Ich stimme zu"
    tab_to("consent-accept")
    keys.press("Space")
    page.wait_for_selector("#enrol-view[data-step=photo]")
    assert focused() == "photo-file"
    with page.expect_file_chooser() as chooser:
        keys.press("Space")
    chooser.value.set_files(str(faces_dir / "img1.jpg"))
    page.wait_for_selector("#photo-feedback[data-ok=true]")
    tab_to("enrol-submit")
    keys.press("Enter")
    page.wait_for_selector("#enrol-view[data-step=receipt]")
    assert focused() == "enrol-done"
    assert page.inner_text("#receipt-title") == "Angemeldet"
    (row,) = env.store.consent_summary()
    assert row["purpose"].endswith("(de)") and len(env.store.active_templates()) == 1
    keys.press("Enter")
    page.wait_for_selector("#enrol-view[data-step=reference]")
