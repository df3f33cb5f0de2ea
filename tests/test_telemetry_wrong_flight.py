"""`wrong_flight` (issue 14): the staffed-lane decisions for travellers enrolled for another
flight, a part of `not_matched`; disclosure control keeps the rest of `not_matched` from being
recovered by subtraction, and the field travels in counts/1."""

from __future__ import annotations

from edge.decisions.events import COUNTER_FIELDS, Kind
from edge.telemetry.disclosure import apply_disclosure_control, suppress
from wire.telemetry import COUNT_FIELDS


def test_wrong_flight_is_a_count_field_and_a_part_of_not_matched() -> None:
    assert "wrong_flight" in COUNT_FIELDS
    assert set(COUNTER_FIELDS[Kind.WRONG_FLIGHT]) == {"not_matched", "wrong_flight"}


def test_the_other_staffed_lane_decisions_are_not_recoverable_by_subtraction() -> None:
    # 12 sent to the staffed lane, 10 of them for another flight: the other 2 would show
    out = suppress({"presented": 30, "matched": 18, "not_matched": 12, "wrong_flight": 10,
                    "gates_opened": 18}, 5)
    assert "not_enrolled" not in out
    assert out["not_matched"] is None or out["wrong_flight"] is None
    # small wrong-flight counts are suppressed, and with them one more cell of the relation
    out = suppress({"presented": 30, "matched": 18, "not_matched": 12, "wrong_flight": 2,
                    "gates_opened": 18}, 5)
    assert out["wrong_flight"] is None and out["not_matched"] is None
    published = apply_disclosure_control(dict.fromkeys(COUNT_FIELDS, 0), 5, None)
    assert set(published) == set(COUNT_FIELDS)
