"""Which PAD runs is said, never claimed where none does: the lane board's PAD line (board API,
snapshot and stream), its presentation-attack alert without identity, `provisioning verify`'s
PAD check, the [pad] settings section and the presentation_attacks count field."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from helpers.provisioning import make_device

from edge.composition.pad_setup import pad_summary
from edge.decisions.events import COUNTER_FIELDS, DecisionEvent, Kind
from edge.kiosk.board import BoardError, LaneBoard
from edge.kiosk.board_feed import board_sink
from edge.telemetry.disclosure import suppress
from foundation.clock import FakeClock
from foundation.settings import Settings
from provisioning.checks import VerifyContext, check_pad
from provisioning.device import update_settings
from provisioning.settings_toml import render_settings_toml
from wire.telemetry import COUNT_FIELDS


def test_board_api_shows_the_pad_line(kiosk):
    kiosk.login()
    assert kiosk.client.get("/api/board").json()["pad"] is None  # nothing said: no claim
    kiosk.board.publish_pad(pad_summary(Settings(), thermal_camera=True))
    pad = kiosk.client.get("/api/board").json()["pad"]
    assert pad["active"] == "thermal" and pad["required"] is True
    assert pad["unknown_policy"] == "staffed_lane"
    assert pad["message"].startswith("Presentation-attack detection: thermal")
    kiosk.board.publish_pad(pad_summary(Settings(), thermal_camera=False))
    pad = kiosk.client.get("/api/board").json()["pad"]
    assert pad["active"] == "none" and "none" in pad["message"]


def test_the_pad_line_reaches_stream_listeners(fake_clock):
    board = LaneBoard(["A"], fake_clock)
    sub = board.subscribe()
    board.publish_pad({"active": "none", "required": True, "unknown_policy": "allow",
                       "message": "Presentation-attack detection: none running"})
    event = sub.get(timeout=1)
    assert event is not None and event["type"] == "pad" and event["pad"]["active"] == "none"
    assert board.snapshot_event()["pad"]["required"] is True


@pytest.mark.parametrize("summary", [{"active": "infrared", "message": "x"}, "thermal",
                                     {"active": "thermal", "message": "x" * 201}])
def test_a_malformed_pad_line_is_refused(fake_clock, summary):
    with pytest.raises(BoardError):
        LaneBoard(["A"], fake_clock).publish_pad(summary)


def test_a_presentation_attack_alerts_staff_without_identity(fake_clock):
    board = LaneBoard(["A", "B"], fake_clock)
    board_sink(board)(DecisionEvent(Kind.PRESENTATION_ATTACK, "B", "not_matched", "too_cold", 7))
    snap = board.snapshot()
    (alert,) = snap["alerts"]
    assert alert["kind"] == "presentation_attack" and alert["lane"] == "B"
    assert "check the traveller at lane B" in alert["message"]
    assert "7" not in alert["message"] and "too_cold" not in alert["message"]
    assert snap["counts"]["presentation_attack"] == 1


def test_verify_says_which_pad_runs(tmp_path: Path):
    dev = make_device(tmp_path)  # the synthetic scene: it renders thermal frames
    ctx = VerifyContext(dev, FakeClock())
    (r,) = check_pad(ctx)
    assert r.status == "pass" and "thermal PAD active" in r.detail
    plain = update_settings(dev, {"capture": {"visible_source": "0"}})
    (r,) = check_pad(VerifyContext(plain, FakeClock()))
    assert r.status == "skip" and r.detail.startswith("NONE") and "face match alone" in r.detail
    required = update_settings(plain, {"pad": {"required": True}})
    (r,) = check_pad(VerifyContext(required, FakeClock()))
    assert r.status == "fail" and "staffed lane" in r.detail and "pad.required" in r.fix


def test_the_pad_section_is_written_and_read_back():
    text = render_settings_toml(Settings.model_validate({"pad": {"unknown_policy": "allow"}}))
    assert "[pad]" in text and 'unknown_policy = "allow"' in text


def test_presentation_attacks_is_a_count_of_its_own_outcome():
    assert COUNT_FIELDS[-1] == "presentation_attacks"
    assert COUNTER_FIELDS[Kind.PRESENTATION_ATTACK] == ("presentation_attacks",)
    # presented = matched + not_matched + presentation_attacks: one small cell hides another
    out = suppress({"presented": 20, "matched": 12, "not_matched": 6,
                    "presentation_attacks": 2, "gates_opened": 12, "wrong_flight": 0}, 5)
    assert out["presentation_attacks"] is None
    assert [out[f] for f in ("matched", "not_matched")].count(None) == 1


def test_an_old_collector_database_gains_the_column(tmp_path: Path):
    from central.windows_db import open_db

    old = [f for f in COUNT_FIELDS if f != "presentation_attacks"]
    path = tmp_path / "windows.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE windows (device TEXT, epoch INTEGER, seq INTEGER, gate TEXT, "
                "window_start INTEGER, window_s INTEGER, k INTEGER, epsilon REAL, "
                "received_at REAL, " + ", ".join(f"{f} INTEGER" for f in old) + ")")
    con.execute("INSERT INTO windows (device, epoch, seq, gate, window_start, window_s, k, "
                "received_at) VALUES ('cg-1', 1, 1, 'G', 1800000000, 300, 5, 0)")
    con.commit()
    con.close()
    db = open_db(path)
    try:
        (value,) = db.execute("SELECT presentation_attacks FROM windows").fetchone()
    finally:
        db.close()
    assert value == 0  # windows from before the field could not have counted one
