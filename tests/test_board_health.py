"""The lane board tells the truth: /healthz's cameras (down, stale), the gate link (down, why,
since when) and thermal screening (off, uncalibrated) become problems in staff's words; the
badge's `live` needs cameras and gate; the operating point reaches engineers and supervisors
only; alerts are acknowledged (audited with staff id and kind, never identity); today's counts
survive a restart of the store (reopened from disk)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
from helpers.board_faults import Box

from edge.consent.keys import write_key_file
from edge.consent.store import ConsentStore
from edge.kiosk.board import LaneBoard
from edge.kiosk.board_counts import StoreCounts
from edge.kiosk.board_feed import board_health, board_health_feed, operating_point_view
from edge.operations.health import HealthFeed, daemon_health, health_report
from edge.vision.operating_point import fpir_rule
from foundation.clock import FakeClock
from foundation.settings import Settings


def faulty_box(clock: FakeClock) -> Box:
    return Box(clock, {"visible": "stale", "thermal": "down"}, gate_up=False)


def test_health_names_each_fault_and_the_badge_is_not_live(fake_clock: FakeClock) -> None:
    box = faulty_box(fake_clock)
    try:
        report = health_report(box.readers[0][1], True, box.link.up, {"A": "manual"},
                               cameras=box.readers, gate=box.link.state(),
                               thermal={"state": "off", "reason": "thermal.source is not set"})
    finally:
        box.stop()
    assert report["status"] == "degraded"
    assert report["cameras"]["visible"]["state"] == "stale"
    assert report["cameras"]["thermal"]["state"] == "down"
    assert report["gate"]["state"] == "down" and "since the start" in report["gate"]["reason"]
    h = board_health(report)
    assert h["live"] is False
    words = {p["what"]: p["message"] for p in h["problems"]}
    assert "stale" in words["camera_visible"] and "down" in words["camera_thermal"]
    assert words["gate"].startswith("gate controller unreachable since ")
    assert words["gate"].endswith("operate the lane by hand")
    assert "thermal.source is not set" in words["thermal"]


def test_live_needs_cameras_and_gate_thermal_off_is_only_a_warning() -> None:
    ok_cam = {"state": "ok"}
    base = {"cameras": {"visible": ok_cam}, "gate_controller": "up", "inference_loop": "ok",
            "gate": {"state": "up", "reason": None, "since": 0}}
    assert board_health(base) == {"live": True, "problems": [], "cameras": {"visible": "ok"},
                                  "gate": "up", "thermal": None}
    off = board_health({**base, "thermal": {"state": "off", "reason": "switched off"}})
    assert off["live"] is True and [p["what"] for p in off["problems"]] == ["thermal"]
    kiosk_cam = board_health({**base, "cameras": {"visible": ok_cam,
                                                  "kiosk": {"state": "down"}}})
    assert kiosk_cam["live"] is True and kiosk_cam["problems"][0]["what"] == "camera_kiosk"
    down = board_health({**base, "gate_controller": "down",
                         "gate": {"reason": "not answering", "since": 0}})
    assert down["live"] is False


def test_daemon_health_says_uncalibrated_when_frames_do_not_fit(fake_clock) -> None:
    problem = "the visible camera gives 1280x720 frames but the thermal calibration was made " \
              "for 640x480"
    d = SimpleNamespace(pipeline=SimpleNamespace(lanes={}, _geometry_problem=problem),
                        thermal_status={"state": "on"}, gate_link=None, reader=None,
                        clock=fake_clock, _loop_beat=fake_clock.monotonic(),
                        _readers=lambda: [])
    body = daemon_health(d)
    assert body["thermal"] == {"state": "uncalibrated", "reason": problem}
    assert body["gate"]["state"] == "down"
    msg = next(p for p in board_health(body)["problems"] if p["what"] == "thermal")["message"]
    assert msg.startswith("thermal screening uncalibrated: the visible camera gives 1280x720")


def test_operating_point_warns_outside_the_calibrated_range() -> None:
    s = Settings()
    rule = fpir_rule(s.vision.embedder, s.consent.target_fpir, s.consent.match_margin)
    inside = operating_point_view(rule(100))
    assert inside["in_range"] and "warning" not in inside and inside["gallery_size"] == 100
    outside = operating_point_view(rule(10**7))
    assert not outside["in_range"] and "outside the calibrated range" in outside["warning"]


def test_feed_publishes_once_a_second_and_only_changes_reach_the_stream(fake_clock) -> None:
    board = LaneBoard(["A"], fake_clock)
    report = {"cameras": {"visible": {"state": "ok"}}, "gate_controller": "up",
              "inference_loop": "ok"}
    feed = HealthFeed(board_health_feed(board, lambda: report), every_s=1.0)
    sub = board.subscribe()
    feed.poll(0.0)
    assert sub.get(0)["health"]["live"] is True
    feed.poll(0.5)
    feed.poll(1.2)  # same health: nothing new on the stream
    assert sub.get(0) is None
    report["gate_controller"] = "down"
    feed.poll(1.5)  # too soon
    assert sub.get(0) is None
    feed.poll(2.3)
    assert sub.get(0)["health"]["live"] is False
    with structlog.testing.capture_logs() as logs:
        HealthFeed(lambda: 1 / 0).poll(0.0)  # never raised into the loop
    assert logs[0]["event"] == "health_publish_failed"


def test_operating_point_is_for_engineers_and_supervisors_only(kiosk) -> None:
    s = Settings()
    rule = fpir_rule(s.vision.embedder, s.consent.target_fpir, s.consent.match_margin)
    gallery = SimpleNamespace(operating_point=lambda: rule(10**7))
    board_health_feed(kiosk.board, lambda: {"gate_controller": "up", "inference_loop": "ok"},
                      gallery)()
    for name, sees in (("agent1", False), ("eng1", True), ("sup1", True)):
        kiosk.login(name)
        health = kiosk.client.get("/api/board").json()["health"]
        assert ("operating_point" in health) is sees, name
        if sees:
            assert "outside the calibrated range" in health["operating_point"]["warning"]


def test_alerts_are_acknowledged_and_audited_without_identity(kiosk) -> None:
    kiosk.board.publish_alert("A", "presentation_attack", "possible presentation attack: "
                              "check the traveller at lane A")
    alert_id = kiosk.board.snapshot()["alerts"][-1]["id"]
    kiosk.login("eng1")  # engineers only view
    assert kiosk.client.post(f"/api/board/alerts/{alert_id}/ack").status_code == 403
    kiosk.login("agent1")
    assert kiosk.client.post("/api/board/alerts/999/ack").status_code == 404
    r = kiosk.client.post(f"/api/board/alerts/{alert_id}/ack")
    assert r.status_code == 200 and r.json()["acked_by"] == "agent1"
    assert kiosk.client.post(f"/api/board/alerts/{alert_id}/ack").status_code == 200  # repeat
    rows = kiosk.store.db.read("SELECT actor, subject, reason FROM audit WHERE event = "
                               "'alert_acknowledged'")
    assert [tuple(r) for r in rows] == [("agent1", "lane A", "presentation_attack")]
    assert kiosk.board.snapshot()["alerts"][-1]["acked_by"] == "agent1"
    assert kiosk.store.audit_log.verify() > 0  # the hash chain still holds


def test_today_counts_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = tmp_path / "keys"
    write_key_file(keys / "store.key")
    write_key_file(keys / "ref.key")

    def open_store(create: bool = False) -> ConsentStore:
        return ConsentStore.open(tmp_path / "store.db", keys / "store.key", keys / "ref.key",
                                 clock, create=create)

    store = open_store(create=True)
    board = LaneBoard(["A"], clock, StoreCounts(store.db))
    board.record_count("granted")
    board.record_count("granted")  # within the second: saved at the next flush
    board.record_count("refused")
    board.flush()
    store.close()
    store = open_store()  # the daemon restarted: a fresh store and board
    try:
        again = LaneBoard(["A"], clock, StoreCounts(store.db))
        counts = again.snapshot()["counts"]
        assert counts["granted"] == 2 and counts["refused"] == 1 and counts["boarded"] == 0
        clock.advance(86400.0)  # the next day starts from 0, and yesterday's rows go
        again.record_count("granted")
        again.flush()
        assert again.snapshot()["counts"]["granted"] == 1
        assert len(store.db.read("SELECT DISTINCT day FROM board_counts")) == 1
    finally:
        store.close()


def test_a_failing_counts_store_never_stops_counting(fake_clock) -> None:
    from edge.consent.errors import ConsentStoreError

    class Broken:
        def load(self, day: str) -> dict[str, int]:
            return {}

        def save(self, day: str, counts: dict[str, int]) -> None:
            raise ConsentStoreError("database is locked")

    board = LaneBoard(["A"], fake_clock, Broken())
    board.record_count("granted")
    board.flush()
    assert board.snapshot()["counts"]["granted"] == 1


@pytest.mark.parametrize("bad", [{}, {"live": "yes", "problems": []},
                                 {"live": False, "problems": [{"message": ""}]}])
def test_malformed_health_is_refused(fake_clock, bad) -> None:
    from edge.kiosk.board import BoardError

    with pytest.raises(BoardError):
        LaneBoard(["A"], fake_clock).publish_health(bad)
