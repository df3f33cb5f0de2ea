"""Where the collector keeps windows: one interface, two backends, chosen by `--db`.

- a file path: SQLite (central.windows_db), the embedded default of the demo and of one
  reference collector; the device state is kept in memory by the one process that owns the file;
- `postgresql://...` (or `postgres://...`): PostgreSQL (central.pg_store), for several collectors
  against one database; the device state is read and locked inside each batch's transaction.

`central.collector.open_store` opens the one `--db` names. Both apply the same per-device
rules (central.sequencing) and commit a batch in one transaction before its answers are sent.
A failed commit raises `StoreFailed`: nothing of the batch is answered, and the devices resend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from central.sequencing import Incoming, Outcome

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreFailed(Exception):
    """A batch could not be committed (nothing of it is stored or answered)."""


@dataclass
class StoredState:
    """What a store holds: device -> (public key, current epoch), device -> {epoch: last seq},
    and the running totals."""

    devices: dict[str, tuple[str, int]]
    epochs: dict[str, dict[int, int]]
    stored: int
    suppressed: int
    totals: dict[str, int]


class WindowStore(Protocol):
    backend: str  # "sqlite" | "postgres"

    def initial(self) -> StoredState:
        """The totals to start the running totals from (devices/epochs may be empty)."""
        ...

    def apply(self, windows: list[Incoming], now: float) -> list[Outcome]:
        """Decide every window, commit what is stored; one Outcome per window, in order."""
        ...

    def device_count(self) -> int:
        ...

    def close(self) -> None:
        ...


def is_postgres(db: str | Path) -> bool:
    """Whether `--db` names a PostgreSQL database (else it is a SQLite file)."""
    return str(db).startswith(POSTGRES_SCHEMES)

