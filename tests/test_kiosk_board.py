"""LaneBoard: states, alerts, daily counts, thread-safe delivery to sync and async listeners."""

from __future__ import annotations

import asyncio
import threading

import pytest

from edge.kiosk.board import STATES, BoardError, LaneBoard
from foundation.clock import FakeClock


def test_initial_snapshot_has_every_lane_idle(fake_clock):
    board = LaneBoard(["A", "B"], fake_clock)
    snap = board.snapshot()
    assert [(lane["lane"], lane["state"]) for lane in snap["lanes"]] == [("A", "idle"),
                                                                         ("B", "idle")]
    assert snap["alerts"] == [] and snap["counts"]["enrolled"] == 0


def test_publish_state_records_since_only_on_change(fake_clock):
    board = LaneBoard(["A"], fake_clock)
    board.publish_state("A", "presenting")
    t0 = board.snapshot()["lanes"][0]["since"]
    fake_clock.advance(3)
    board.publish_state("A", "presenting", "still there")
    lane = board.snapshot()["lanes"][0]
    assert lane["since"] == t0 and lane["detail"] == "still there"
    board.publish_state("A", "granted")
    assert board.snapshot()["lanes"][0]["since"] == t0 + 3


@pytest.mark.parametrize("call", [
    lambda b: b.publish_state("Z", "idle"),
    lambda b: b.publish_state("A", "open"),
    lambda b: b.publish_state("A", "idle", "x" * 201),
    lambda b: b.publish_alert("A", "Refer!", "text"),
    lambda b: b.publish_alert("A", "refer", "  "),
    lambda b: b.publish_alert("Q", "refer", "text"),
    lambda b: b.record_count("Bad Field"),
    lambda b: b.record_count("enrolled", -1),
    lambda b: b.record_count("enrolled", True),
])
def test_bad_publish_calls_raise_board_error(fake_clock, call):
    board = LaneBoard(["A"], fake_clock)
    with pytest.raises(BoardError):
        call(board)


def test_board_needs_unique_lanes(fake_clock):
    with pytest.raises(BoardError):
        LaneBoard([], fake_clock)
    with pytest.raises(BoardError):
        LaneBoard(["A", "A"], fake_clock)


def test_all_documented_states_are_accepted(fake_clock):
    board = LaneBoard(["A"], fake_clock)
    for state in STATES:
        board.publish_state("A", state)
        assert board.snapshot()["lanes"][0]["state"] == state


def test_alerts_are_capped_and_ordered(fake_clock):
    board = LaneBoard(["A"], fake_clock)
    for i in range(60):
        board.publish_alert("A", "refer", f"refer {i}")
    alerts = board.snapshot()["alerts"]
    assert len(alerts) == 50 and alerts[-1]["message"] == "refer 59"
    assert [a["id"] for a in alerts] == sorted(a["id"] for a in alerts)


def test_counts_reset_when_the_day_changes():
    clock = FakeClock(start=1_800_000_000.0)
    board = LaneBoard(["A"], clock)
    board.record_count("enrolled", 3)
    board.record_count("new_field")
    assert board.snapshot()["counts"]["enrolled"] == 3
    assert board.snapshot()["counts"]["new_field"] == 1
    clock.advance(86_400)
    snap = board.snapshot()
    assert snap["counts"]["enrolled"] == 0 and "new_field" not in snap["counts"]


def test_sync_subscriber_gets_events_from_other_threads(fake_clock):
    board = LaneBoard(["A", "B"], fake_clock)
    sub = board.subscribe()

    def worker(lane: str) -> None:
        for _ in range(50):
            board.publish_state(lane, "presenting")
            board.record_count("granted")

    threads = [threading.Thread(target=worker, args=(lane,)) for lane in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = []
    while (e := sub.get(timeout=0.1)) is not None:
        events.append(e)
    assert len(events) == 200
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 200
    last_counts = [e for e in events if e["type"] == "counts"][-1]
    assert last_counts["counts"]["granted"] == 100
    sub.close()
    assert board.subscriber_count == 0


def test_async_subscriber_receives_thread_published_events(fake_clock):
    board = LaneBoard(["A"], fake_clock)

    async def main() -> list[dict]:
        sub = board.subscribe()
        got: list[dict] = []

        def publish() -> None:
            board.publish_state("A", "granted")
            board.publish_alert("A", "refer", "refer for secondary screening")
            board.record_count("refer")

        threading.Thread(target=publish).start()
        async for event in sub:
            got.append(event)
            if len(got) == 3:
                break
        sub.close()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 5))
    assert [e["type"] for e in got] == ["state", "alert", "counts"]
    assert got[1]["message"] == "refer for secondary screening"
    assert board.subscriber_count == 0


def test_slow_subscriber_is_resynced_with_a_snapshot(fake_clock):
    board = LaneBoard(["A"], fake_clock)
    sub = board.subscribe(maxsize=4)
    for _ in range(10):
        board.record_count("granted")
    events = []
    while (e := sub.get(timeout=0.05)) is not None:
        events.append(e)
    assert len(events) <= 4
    assert any(e["type"] == "snapshot" for e in events)
    assert events[-1].get("counts", {}).get("granted") == 10


def test_subscriber_on_a_closed_loop_is_dropped(fake_clock):
    board = LaneBoard(["A"], fake_clock)

    async def make():
        return board.subscribe()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(make())
    loop.close()
    assert board.subscriber_count == 1
    board.publish_state("A", "granted")  # must not raise
    assert board.subscriber_count == 0
