"""The lane board tells the truth, in real Chromium: each fault /healthz knows (a camera down,
stale frames, thermal screening off or uncalibrated, the gate controller unreachable with why
and since when) shows on the board in plain words and takes the badge off "live"; the badge
is green "live" only while the cameras deliver and the gate link is up; engineers see the
matcher's operating point with a warning outside the calibrated range, agents do not; staff
acknowledge an alert (audited); today's counts are on the board after a restart. The health
comes from real capture readers and a real gate link (tests/helpers/board_faults.py) through
the daemon's own path (edge.operations.health -> edge.kiosk.board_feed)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers.board_faults import Box
from helpers.browser import chromium_page, log_in
from helpers.kiosk import PASSWORD

from edge.kiosk.board_feed import board_health_feed
from edge.operations.health import health_report
from edge.vision.operating_point import fpir_rule
from foundation.settings import Settings

pytestmark = pytest.mark.browser

THERMAL_ON = {"state": "on", "reason": None}


def publish(env, cameras: dict[str, str], gate_up: bool = True, thermal=THERMAL_ON,
            gallery=None) -> None:
    """Build the fault for real, report it as /healthz does and feed it to the board."""
    box = Box(env.clock, cameras, gate_up)
    try:
        visible = dict(box.readers).get("visible")
        report = health_report(visible, True, box.link.up, {"A": "idle"}, cameras=box.readers,
                               gate=box.link.state(), thermal=thermal)
        board_health_feed(env.board, lambda: report, gallery)()
    finally:
        box.stop()


def board_page(page, server, name: str = "sup1") -> None:
    log_in(page, server.url, name, PASSWORD)
    if name.startswith("agent"):  # an agent's kiosk opens on enrolment
        page.click("#tab-board")
    page.wait_for_selector("#board-view:not([hidden])")
    page.wait_for_selector("#board-status[data-connected=true]")


def expect_degraded(page, what: str, words: str) -> str:
    page.wait_for_selector(f"#health li[data-what={what}]")
    page.wait_for_selector("#board-status[data-health=degraded]")
    assert words in page.inner_text(f"#health li[data-what={what}]")
    return page.inner_text("#board-status")


def test_live_only_when_cameras_deliver_and_the_gate_link_is_up(live_kiosk, tmp_path: Path):
    env, server = live_kiosk
    with chromium_page(tmp_path) as page:
        board_page(page, server)
        # connected, but the daemon has said nothing yet: never "live" by default
        assert page.get_attribute("#board-status", "data-health") == "unknown"
        assert page.inner_text("#board-status") != "live"
        publish(env, {"visible": "ok", "thermal": "ok"})
        page.wait_for_selector("#board-status[data-health=live]")
        assert page.inner_text("#board-status") == "live"
        assert page.is_hidden("#health")


def test_a_camera_down_is_shown_and_the_badge_says_why(live_kiosk, tmp_path: Path):
    env, server = live_kiosk
    with chromium_page(tmp_path) as page:
        board_page(page, server)
        publish(env, {"visible": "down"})
        badge = expect_degraded(page, "camera_visible", "visible camera down")
        assert badge.startswith("degraded: visible camera down")


def test_stale_frames_are_shown(live_kiosk, tmp_path: Path):
    env, server = live_kiosk
    with chromium_page(tmp_path) as page:
        board_page(page, server)
        publish(env, {"visible": "ok", "thermal": "stale"})
        badge = expect_degraded(page, "camera_thermal", "frames are stale")
        assert "thermal camera frames are stale" in badge


def test_the_gate_down_is_shown_with_why_and_since_when(live_kiosk, tmp_path: Path):
    env, server = live_kiosk
    with chromium_page(tmp_path) as page:
        board_page(page, server)
        publish(env, {"visible": "ok"}, gate_up=False)
        badge = expect_degraded(page, "gate", "gate controller unreachable since ")
        text = page.inner_text("#health li[data-what=gate]")
        assert "did not acknowledge" in text and text.endswith("operate the lane by hand")
        assert "unreachable since " in badge
        page.reload()  # a fresh page gets the health from the snapshot
        page.wait_for_selector("#health li[data-what=gate]")


@pytest.mark.parametrize(("thermal", "state", "words"), [
    ({"state": "off", "reason": "thermal.source is not set"}, "off",
     "thermal screening off: thermal.source is not set"),
    ({"state": "uncalibrated", "reason": "the visible camera gives 1280x720 frames but the "
                                         "thermal calibration was made for 640x480"},
     "uncalibrated", "thermal screening uncalibrated: the visible camera gives 1280x720")])
def test_thermal_off_or_uncalibrated_is_shown_but_the_gate_stays_live(
        live_kiosk, tmp_path: Path, thermal, state, words):
    env, server = live_kiosk
    with chromium_page(tmp_path) as page:
        board_page(page, server)
        publish(env, {"visible": "ok"}, thermal=thermal)
        page.wait_for_selector(f"#health li[data-what=thermal][data-state={state}]")
        assert words in page.inner_text("#health")
        page.wait_for_selector("#board-status[data-health=live]")  # a warning, not a fault


def test_engineers_see_the_operating_point_agents_do_not(live_kiosk, tmp_path: Path):
    env, server = live_kiosk
    s = Settings()
    rule = fpir_rule(s.vision.embedder, s.consent.target_fpir, s.consent.match_margin)
    publish(env, {"visible": "ok"}, gallery=SimpleNamespace(operating_point=lambda: rule(10**7)))
    with chromium_page(tmp_path) as page:
        board_page(page, server, "eng1")
        page.wait_for_selector("#operating-point:not([hidden])[data-in-range=false]")
        text = page.inner_text("#operating-point")
        assert "threshold 0.7" in text and "gallery 10000000 templates" in text
        assert "FPIR target 0.003" in text and "outside the calibrated range" in text
    (tmp_path / "agent").mkdir()
    with chromium_page(tmp_path / "agent") as page:
        board_page(page, server, "agent1")
        page.wait_for_selector("#board-status[data-health=live]")
        assert page.is_hidden("#operating-point")


def test_staff_acknowledge_an_alert_and_counts_show(live_kiosk, tmp_path: Path):
    env, server = live_kiosk
    env.board.record_count("granted", 3)
    with chromium_page(tmp_path) as page:
        board_page(page, server, "agent1")
        env.board.publish_alert("A", "presentation_attack", "possible presentation attack (a "
                                "photo or a screen held up): check the traveller at lane A")
        page.wait_for_selector("#alerts li[data-kind=presentation_attack] button.ack")
        page.click("#alerts li[data-kind=presentation_attack] button.ack")
        page.wait_for_selector("#alerts li[data-kind=presentation_attack][data-acked=true]")
        assert "seen by agent1" in page.inner_text("#alerts")
        assert page.get_attribute("#count-granted", "data-count") == "3"
    rows = env.store.db.read("SELECT actor, subject, reason FROM audit WHERE event = "
                             "'alert_acknowledged'")
    assert [tuple(r) for r in rows] == [("agent1", "lane A", "presentation_attack")]
