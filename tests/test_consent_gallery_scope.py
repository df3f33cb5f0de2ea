"""The flight gallery (issue 14): while a flight boards, only templates whose consent scope is
that flight can match, the FPIR threshold is the one for the in-scope gallery size, and a
traveller enrolled for another flight or day is "wrong_flight"; with no flight set everything
is as before. Also the boarding selection itself (flights, schedule file, supervisor choice)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from edge.consent import boarding as b
from edge.consent.gallery import Gallery
from edge.vision import operating_point as op
from foundation.clock import FakeClock

DIM = 512
FLIGHT, OTHER = "XY0123/015", "ZZ0456/015"


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _probe_at(v: np.ndarray, cosine: float, rng) -> np.ndarray:
    w = rng.standard_normal(DIM)
    w -= (w @ v) * v
    w /= np.linalg.norm(w)
    return _unit(cosine * v + np.sqrt(1 - cosine ** 2) * w)


def _enrol(store, clock, n, scope, rng, prefix) -> list[tuple[str, np.ndarray]]:
    out = []
    for i in range(n):
        v = _unit(rng.standard_normal(DIM))
        c = store.grant_consent(f"{prefix}{i}", "boarding", scope, clock.now() + 3600, "t")
        store.enrol(c.consent_id, [v], "fr_feature", "t")
        out.append((c.consent_id, v))
    return out


def _bulk(store, clock, n, scope, rng, prefix) -> None:
    """Setup only: many one-template consents in one transaction (enrol() commits each)."""
    now = clock.now()
    with store.db.write() as conn:
        for i in range(n):
            cid = f"{prefix}{i}"
            conn.execute("INSERT INTO consents (consent_id, ref_hash, code_hash, purpose, scope, "
                         "granted_at, expires_at) VALUES (?, ?, ?, 'boarding', ?, ?, ?)",
                         (cid, cid.encode(), cid.encode() + b"c", scope, now, now + 3600))
            conn.execute("INSERT INTO templates (consent_id, model_name, dim, created_at, "
                         "expires_at, embedding) VALUES (?, 'fr', ?, ?, ?, ?)",
                         (cid, DIM, now, now + 3600,
                          _unit(rng.standard_normal(DIM)).astype("<f4").tobytes()))


class Scopes:
    def __init__(self, *scopes: str) -> None:
        self.scopes = frozenset(scopes)

    def __call__(self) -> frozenset[str] | None:
        return self.scopes or None


@pytest.mark.parametrize("index_min", [20_000, 0])  # exhaustive, and the two-stage index
def test_a_template_of_another_flight_never_matches(store, fake_clock, index_min) -> None:
    rng = np.random.default_rng(1)
    _bulk(store, fake_clock, 70, FLIGHT, rng, "fa")  # enough rows for sealed int8 blocks
    _bulk(store, fake_clock, 70, OTHER, rng, "fb")
    ours = _enrol(store, fake_clock, 5, FLIGHT, rng, "A")
    theirs = _enrol(store, fake_clock, 5, OTHER, rng, "B")
    gallery = Gallery(store, fake_clock, 0.414, 0.05, boarding=Scopes(FLIGHT),
                      index_min=index_min, block_rows=64)
    try:
        assert bool(gallery._index.sealed_rows) == (index_min == 0)
        for _, vec in theirs:  # even an exact copy of their template
            r = gallery.match(vec)
            assert r.consent_id is None and not r.matched and r.reason == "wrong_flight"
        for consent_id, vec in ours:
            r = gallery.match(_probe_at(vec, 0.8, rng))
            assert r.matched and r.consent_id == consent_id
        stranger = gallery.match(_unit(rng.standard_normal(DIM)))
        assert stranger.reason == "below_threshold"
    finally:
        gallery.close()


def test_the_threshold_is_the_one_for_the_in_scope_size(store, fake_clock) -> None:
    rng = np.random.default_rng(2)
    rule = op.fpir_rule("fr_feature", 0.003)
    ours = _enrol(store, fake_clock, 3, FLIGHT, rng, "A")
    _enrol(store, fake_clock, 400, OTHER, rng, "B")
    scopes = Scopes(FLIGHT)
    gallery = Gallery(store, fake_clock, 0.414, 0.05, rule=rule, boarding=scopes)
    try:
        assert gallery.size == 3 and gallery.operating_point().gallery_size == 3
        probe = _probe_at(ours[0][1], rule(3).threshold + 0.01, rng)
        r = gallery.match(probe)  # below the 403-template threshold, above the 3-template one
        assert r.matched and r.consent_id == ours[0][0]
        assert r.threshold == pytest.approx(rule(3).threshold)
        assert gallery.current_operating_point.gallery_size == 3
        assert rule(403).threshold > rule(3).threshold + 0.02
        scopes.scopes = frozenset()  # nothing set: every flight, as before
        assert gallery.size == 403
        r = gallery.match(probe)
        assert not r.matched and r.reason == "below_threshold"
        assert gallery.current_operating_point.gallery_size == 403
    finally:
        gallery.close()


def test_with_no_flight_set_every_flight_boards(store, fake_clock) -> None:
    rng = np.random.default_rng(3)
    ours = _enrol(store, fake_clock, 2, FLIGHT, rng, "A")
    theirs = _enrol(store, fake_clock, 2, OTHER, rng, "B")
    for boarding in (None, Scopes()):
        gallery = Gallery(store, fake_clock, 0.414, 0.05, boarding=boarding)
        try:
            for consent_id, vec in ours + theirs:
                assert gallery.match(vec).consent_id == consent_id
        finally:
            gallery.close()


def test_an_other_flight_lookalike_is_not_granted_as_an_in_scope_traveller(store,
                                                                          fake_clock) -> None:
    """A traveller of another flight who resembles one of this flight: their own template
    scores higher, so no grant as the in-scope traveller."""
    rng = np.random.default_rng(4)
    (cid_in, v_in), = _enrol(store, fake_clock, 1, FLIGHT, rng, "A")
    look = _probe_at(v_in, 0.55, rng)  # the other traveller's face, close to ours
    c = store.grant_consent("B0", "boarding", OTHER, fake_clock.now() + 3600, "t")
    store.enrol(c.consent_id, [look], "fr_feature", "t")
    gallery = Gallery(store, fake_clock, 0.414, 0.05, boarding=Scopes(FLIGHT))
    try:
        r = gallery.match(look)
        assert r.consent_id is None and r.reason == "wrong_flight"
        assert r.candidate == cid_in  # the in-scope top-1, for the multi-frame rule
        close = _probe_at(v_in, 0.7, rng)
        close = _unit(close + 0.9 * look)  # between the two: too close to call
        assert gallery.match(close).reason in ("ambiguous", "wrong_flight")
        assert not gallery.match(close).matched
    finally:
        gallery.close()


def test_the_scope_follows_the_boarding_and_new_enrolments(store, fake_clock) -> None:
    rng = np.random.default_rng(5)
    scopes = Scopes(FLIGHT)
    gallery = Gallery(store, fake_clock, 0.414, 0.05, boarding=scopes)
    try:
        assert gallery.match(_unit(rng.standard_normal(DIM))).reason == "empty"
        (cid, vec), = _enrol(store, fake_clock, 1, OTHER, rng, "B")
        assert gallery.match(vec).reason == "wrong_flight"
        scopes.scopes = frozenset({FLIGHT, OTHER})  # the gate boards both now
        assert gallery.match(vec).consent_id == cid and gallery.size == 1
        (cid2, vec2), = _enrol(store, fake_clock, 1, "QQ0001/015", rng, "C")  # new scope code
        assert gallery.match(vec2).reason == "wrong_flight"
        scopes.scopes = frozenset({"QQ0001/015"})
        assert gallery.match(vec2).consent_id == cid2 and gallery.size == 1
    finally:
        gallery.close()


# ------------------------------------------------------------------------------ boarding
def test_flights_and_scopes_are_spelt_as_the_boarding_pass_spells_them() -> None:
    day = dt.date(2027, 11, 22)
    assert b.parse_flight("ac834") == "AC0834" and b.parse_flight("BAW 12A") == "BAW0012A"
    assert b.flight_scope("AC834", day) == "AC0834/326"  # as the kiosk scopes a BCBP pass
    assert b.parse_scope("AC0834/326") == ("AC0834", 326)
    assert b.parse_scope("GATE-0/2027-11-22") is None
    assert b.describe_scope("AC0834/326", day) == "AC0834 22 Nov"
    for bad in ("", "A", "XY12345", "XY-12", "1234"):
        with pytest.raises(b.BoardingError):
            b.parse_flight(bad)


def _local(y, m, d, hh, mm=0) -> float:
    return dt.datetime(y, m, d, hh, mm).astimezone().timestamp()


def test_the_schedule_boards_each_flight_in_its_window_and_the_supervisor_overrides() -> None:
    data = json.dumps({"flights": [
        {"flight": "XY123", "start": "2027-01-15T09:00", "end": "2027-01-15T10:00"},
        {"flight": "ZZ456", "start": "2027-01-15T09:30", "end": "2027-01-15T11:00"}]})
    schedule = b.parse_schedule(data.encode(), "json")
    assert [f.scope for f in schedule] == ["XY0123/015", "ZZ0456/015"]
    clock = FakeClock(start=_local(2027, 1, 15, 8, 0))
    boarding = b.Boarding(clock, schedule)
    seen: list[dict] = []
    boarding.add_listener(seen.append)
    assert boarding.scopes() is None and boarding.state().source == "none"
    assert "no flight set" in boarding.summary()["message"]
    clock.advance(3600 + 60)  # 09:01
    assert boarding.scopes() == {"XY0123/015"} and boarding.state().source == "schedule"
    boarding.poll()
    clock.advance(1800)  # 09:31: both
    assert boarding.scopes() == {"XY0123/015", "ZZ0456/015"}
    boarding.set_scopes(["QQ0001/015"])  # the supervisor's choice wins
    assert boarding.scopes() == {"QQ0001/015"} and boarding.state().source == "supervisor"
    boarding.set_scopes([])  # cleared: the schedule again
    assert boarding.state().source == "schedule"
    clock.advance(2 * 3600)  # 11:31: nothing
    boarding.poll()
    assert boarding.scopes() is None
    assert [s["source"] for s in seen] == ["schedule", "supervisor", "schedule", "none"]
    assert seen[1]["flights"] == ["QQ0001 15 Jan"]
    with pytest.raises(b.BoardingError):
        boarding.set_scopes(["not a scope"])
    with pytest.raises(b.BoardingError):
        boarding.set_scopes([f"XY{i:04d}/015" for i in range(9)])


@pytest.mark.parametrize("text,kind", [
    (b"flight,start,end\nXY123,2027-01-15T09:00,2027-01-15T10:00\n", "csv"),
    (b'[{"flight": "XY123", "start": "2027-01-15T09:00+01:00", '
     b'"end": "2027-01-15T10:00+01:00"}]', "json"),
])
def test_a_valid_schedule_file_loads(tmp_path, text, kind) -> None:
    path = tmp_path / f"schedule.{kind}"
    path.write_bytes(text)
    (entry,) = b.load_schedule(path)
    assert entry.flight == "XY0123" and entry.end - entry.start == 3600


@pytest.mark.parametrize("text,kind,words", [
    (b'[{"flight": "XY123", "start": "2027-01-15T09:00"}]', "json", "exactly flight"),
    (b'[{"flight": "XY123", "start": "2027-01-15T10:00", "end": "2027-01-15T09:00"}]', "json",
     "after the start"),
    (b'[{"flight": "XY123", "start": "2027-01-15T00:00", "end": "2027-01-16T00:00"}]', "json",
     "at most 12 hours"),
    (b'[{"flight": "XY123", "start": "tomorrow", "end": "2027-01-15T09:00"}]', "json",
     "ISO 8601"),
    (b'[{"flight": "NOPE!", "start": "2027-01-15T09:00", "end": "2027-01-15T10:00"}]', "json",
     "flight number"),
    (b'{"flights": {"XY123": 1}}', "json", "a list"),
    (b"not json", "json", "not valid JSON"),
    (b"flight,when\nXY123,09:00\n", "csv", "first line"),
    (b"flight,start,end\nXY123,2027-01-15T09:00,2027-01-15T10:00,extra\n", "csv",
     "exactly flight"),
    (b"[" + b'{"flight": "XY1", "start": "2027-01-15T09:00", "end": "2027-01-15T10:00"},'
     * 201 + b"{}]", "json", "more than 200"),
    (b" " * (65 * 1024), "json", "larger than"),
])
def test_a_bad_schedule_is_refused_with_its_reason(tmp_path, text, kind, words) -> None:
    path = tmp_path / f"schedule.{kind}"
    path.write_bytes(text)
    with pytest.raises(b.BoardingError, match=words):
        b.load_schedule(path)


def test_a_schedule_must_be_json_or_csv(tmp_path) -> None:
    with pytest.raises(b.BoardingError, match=r"\.json or \.csv"):
        b.load_schedule(tmp_path / "schedule.txt")
    with pytest.raises(b.BoardingError, match="cannot be read"):
        b.load_schedule(tmp_path / "missing.json")
