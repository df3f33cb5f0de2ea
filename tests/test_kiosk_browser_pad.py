"""The lane board's PAD line in real Chromium: "not reported yet" until the daemon says which
presentation-attack detection runs, then its words, live; a presentation-attack alert names the
lane and nobody."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.browser import chromium_page, log_in
from helpers.kiosk import PASSWORD

from edge.composition.pad_setup import pad_summary
from foundation.settings import Settings

pytestmark = pytest.mark.browser


def test_the_board_says_which_pad_runs_and_shows_an_attack_alert(live_kiosk, tmp_path: Path):
    env, server = live_kiosk
    with chromium_page(tmp_path) as page:
        log_in(page, server.url, "sup1", PASSWORD)
        page.wait_for_selector("#board-view:not([hidden])")
        page.wait_for_selector("#board-status[data-connected=true]")
        assert page.get_attribute("#pad-line", "data-active") == "unknown"
        assert "not reported yet" in page.inner_text("#pad-line")  # never claimed by default
        env.board.publish_pad(pad_summary(Settings(), thermal_camera=False))
        page.wait_for_selector("#pad-line[data-active=none]")
        assert "face match alone" in page.inner_text("#pad-line")
        env.board.publish_pad(pad_summary(Settings(), thermal_camera=True))
        page.wait_for_selector("#pad-line[data-active=thermal]")
        assert page.inner_text("#pad-line").startswith("Presentation-attack detection: thermal")
        env.board.publish_alert("A", "presentation_attack", "possible presentation attack (a "
                                "photo or a screen held up): check the traveller at lane A")
        page.wait_for_selector("#alerts li[data-kind=presentation_attack]")
        assert "check the traveller at lane A" in page.inner_text("#alerts")
        page.reload()  # a fresh page gets the line from the snapshot
        page.wait_for_selector("#pad-line[data-active=thermal]")
