"""A small fleet in a central database for the dashboard tests (not a test module).

`fill(store)` (`fleet_db(path)`: into a new SQLite file) stores 3 hours of 5-minute windows
from four devices at four gates (two at airport LHR, one at CDG, one gate id without an
airport) through the store's own rules, with known counts: `not_matched` and `referred`
suppressed (None) in every window, `faults` 1 in the window of seq 1 only.
`EXPECT` is what every hour of one device sums to.
"""

from __future__ import annotations

import time
from pathlib import Path

from central.sequencing import Incoming
from central.windows_db import SqliteStore
from wire.telemetry import COUNT_FIELDS

T0 = 1_800_000_000  # 2027-01-15T08:00:00Z, an hour start
WINDOWS = 36        # 3 hours of 300 s
GATES = {"d1": "LHR.B12", "d2": "LHR.B14", "d3": "CDG.K3", "d4": "G9"}
PASSWORD = "correct horse battery"


def counts(seq: int) -> dict[str, int | None]:
    return dict.fromkeys(COUNT_FIELDS, 0) | {
        "temperature_screened": 10, "gates_opened": 6, "not_matched": None, "referred": None,
        "close_contacts": 2, "peak_in_view": seq % 7, "faults": 1 if seq == 1 else 0,
        "presented": 8, "matched": 8}


def incoming(device: str, seq: int) -> Incoming:
    return Incoming(f"K-{device}", {"type": "window", "epoch": 1, "seq": seq,
                                    "prev": seq - 1 or None},
                    {"device": device, "gate": GATES[device],
                     "window_start": T0 + 300 * (seq - 1), "window_s": 300, "k": 5,
                     "epsilon": None, "counts": counts(seq)})


def fill(store) -> None:
    """All four devices' windows, one batch per device."""
    for device in GATES:
        outcomes = store.apply([incoming(device, s) for s in range(1, WINDOWS + 1)], time.time())
        assert all(o.kind == "stored" for o in outcomes), outcomes


def fleet_db(path: Path) -> Path:
    """A central SQLite database at `path` holding the fleet (`fill`); returns `path`."""
    store = SqliteStore(path)
    try:
        fill(store)
    finally:
        store.close()
    return path


# one device's hour: 12 windows
EXPECT = {"temperature_screened": 120, "gates_opened": 72, "not_matched": None,
          "referred": None, "close_contacts": 24, "presentation_attacks": 0}
