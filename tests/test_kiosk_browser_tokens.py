"""Token mode on the kiosk page in real Chromium (Debian's, via Playwright): on a `both` gate the
traveller chooses "face and my own key", the receipt shows the QR code (readable: decoded from
a screenshot), the key's text and the PDF link, and all of it is gone after "Done"; the lane
board's keyboard-wedge field sends a scanned key to the lane and shows only "received"."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers.browser import Shots, chromium_page
from helpers.browser import log_in as _log_in
from helpers.kiosk import PASSWORD

from edge.decisions.lanes import LaneMachine, LaneRules

pytestmark = pytest.mark.browser


def test_traveller_chooses_a_key_and_gets_its_qr_code_once(both_gate, faces_dir, tmp_path,
                                                           fake_clock):
    env, server = both_gate
    with chromium_page(tmp_path) as page:
        shot = Shots(page, tmp_path / "screenshots")
        _log_in(page, server.url, "agent1", PASSWORD)
        page.fill("#enrol-reference", "ABC123")
        page.click("#enrol-reference-next")
        page.wait_for_selector("#consent-accept-token:not([hidden])")
        assert page.is_hidden("#consent-accept")
        assert "only you" in page.inner_text("#consent-text")
        shot("choice")
        page.click("#consent-accept-token")
        page.set_input_files("#photo-file", str(faces_dir / "img1.jpg"))
        page.wait_for_selector("#photo-feedback[data-ok=true]")
        page.click("#enrol-submit")
        page.wait_for_selector("#receipt-token:not([hidden])")
        token = page.inner_text("#receipt-token-text")
        assert token.startswith("CG1.") and len(token) == 98
        assert page.get_attribute("#receipt-pdf", "href").startswith("blob:")
        qr = page.locator("#receipt-qr img")
        assert qr.get_attribute("src").startswith("data:image/svg+xml")
        png = qr.screenshot(path=str(tmp_path / "qr.png"))
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert cv2.QRCodeDetector().detectAndDecode(image)[0] == token  # the shown code works
        shot("receipt")
        assert env.store.active_templates() == []  # sealed: not in the gallery
        page.click("#enrol-done")
        page.wait_for_selector("#enrol-step-reference:not([hidden])")
        assert page.locator("img").count() == 0
        assert token not in page.content()

        page.click("#tab-board")
        page.wait_for_selector("#token-form:not([hidden])")
        page.fill("#token-input", token)
        page.press("#token-input", "Enter")
        page.wait_for_selector("#message:not([hidden])")
        assert "key received for lane A" in page.inner_text("#message")
        assert page.input_value("#token-input") == ""
        shot("board-scanned")
    lanes = env.services.tokens.lanes
    lanes.verdict("A", LaneMachine("A", LaneRules(), fake_clock))
    assert lanes.held("A") == "template"  # the scanned key opened the traveller's template


def test_a_gallery_gate_page_shows_no_token_controls(live_kiosk, tmp_path):
    _, server = live_kiosk
    with chromium_page(tmp_path) as page:
        _log_in(page, server.url, "agent1", PASSWORD)
        page.fill("#enrol-reference", "ABC123")
        page.click("#enrol-reference-next")
        page.wait_for_selector("#enrol-step-consent:not([hidden])")
        assert page.is_visible("#consent-accept") and page.is_hidden("#consent-accept-token")
        page.click("#tab-board")
        page.wait_for_selector("#board-status[data-connected=true]")
        assert page.is_hidden("#token-form")
