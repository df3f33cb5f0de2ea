"""WindowCounters: aligned windows, empty windows, peaks, bad input, thread safety."""

from __future__ import annotations

import threading

import pytest

from edge.telemetry.counters import COUNT_FIELDS, MAX_EMPTY_CATCHUP, WindowCounters
from edge.telemetry.errors import UnknownCountField
from foundation.clock import FakeClock
from foundation.errors import ConsentGateError


def test_count_fields_are_the_agreed_names():
    assert COUNT_FIELDS == (
        "people_detected", "presented", "matched", "not_matched", "wrong_flight",
        "gates_opened", "passages", "tailgating_alarms", "temperature_screened", "referred",
        "unreliable", "close_contacts", "peak_in_view", "faults", "presentation_attacks")


def test_windows_are_aligned_and_closed_only_after_their_end():
    clock = FakeClock(start=1_800_000_123.0)
    c = WindowCounters(clock, 300)
    c.add("matched", 3)
    c.add("presented")
    c.observe_peak(4)
    c.observe_peak(2)
    assert c.close_due() == []
    clock.advance(300 - 123 - 0.001)
    assert c.close_due() == []
    clock.advance(0.002)
    (w,) = c.close_due()
    assert w.start == 1_800_000_100 - 100 and w.start % 300 == 0
    assert w.length_s == 300 and w.end == w.start + 300
    assert w.counts["matched"] == 3 and w.counts["presented"] == 1
    assert w.counts["peak_in_view"] == 4
    assert set(w.counts) == set(COUNT_FIELDS)
    assert c.close_due() == []  # handed out once


def test_quiet_windows_are_closed_as_zeros():
    clock = FakeClock(start=1_800_000_000.0)
    c = WindowCounters(clock, 60)
    c.add("faults")
    clock.advance(60 * 4)
    ws = c.close_due()
    assert [w.start for w in ws] == [1_800_000_000 + 60 * i for i in range(4)]
    assert ws[0].counts["faults"] == 1
    assert all(v == 0 for w in ws[1:] for v in w.counts.values())


def test_long_clock_jump_caps_the_empty_windows():
    clock = FakeClock(start=1_800_000_000.0)
    c = WindowCounters(clock, 1)
    clock.advance(MAX_EMPTY_CATCHUP * 3)
    ws = c.close_due()
    assert len(ws) == MAX_EMPTY_CATCHUP + 1
    starts = [w.start for w in ws]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_clock_stepping_back_keeps_counting_into_the_open_window():
    clock = FakeClock(start=1_800_000_000.0)
    c = WindowCounters(clock, 60)
    c.add("passages")
    clock._now -= 3600  # a wall-clock step back (NTP)
    c.add("passages")
    assert c.close_due() == []
    assert c.snapshot().counts["passages"] == 2


@pytest.mark.parametrize("field,n", [("names", 1), ("peak_in_view", 1)])
def test_unknown_or_wrong_field_is_an_operator_error(field, n):
    c = WindowCounters(FakeClock(), 60)
    with pytest.raises(ConsentGateError):
        c.add(field, n)


@pytest.mark.parametrize("n", [-1, 1.5, True, "2"])
def test_bad_increment_is_refused(n):
    c = WindowCounters(FakeClock(), 60)
    with pytest.raises(ValueError):
        c.add("matched", n)
    with pytest.raises(ValueError):
        c.observe_peak(n)


def test_bad_window_length_is_refused():
    with pytest.raises(ValueError):
        WindowCounters(FakeClock(), 0)


def test_concurrent_adds_lose_nothing():
    clock = FakeClock(start=1_800_000_000.0)
    c = WindowCounters(clock, 60)
    closed = []

    def worker():
        for i in range(2000):
            c.add("people_detected")
            if i % 500 == 0:
                clock.advance(20)
                closed.extend(c.close_due())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.advance(60)
    closed.extend(c.close_due())
    assert sum(w.counts["people_detected"] for w in closed) == 8000
    starts = [w.start for w in closed]
    assert len(starts) == len(set(starts))


def test_restore_merges_the_same_window_and_closes_an_older_one() -> None:
    clock = FakeClock(start=6000.0)
    c = WindowCounters(clock, 60)
    v0 = c.version
    c.add("matched", 2)
    c.observe_peak(5)
    assert c.version > v0
    assert c.restore(6000, 60, {"matched": 3, "peak_in_view": 4}) is True  # same window
    assert c.snapshot().counts["matched"] == 5 and c.snapshot().counts["peak_in_view"] == 5
    assert c.restore(5880, 60, {"passages": 9}) is False  # ended before the restart
    (old,) = c.close_due()
    assert (old.start, old.counts["passages"]) == (5880, 9)
    with pytest.raises(UnknownCountField):
        c.restore(6000, 60, {"names": 1})
    with pytest.raises(ValueError):
        c.restore(6000, 60, {"matched": -1})
