"""Central's PostgreSQL schema as versioned migrations (the `schema_version` table).

`migrate(conn)` applies, in one transaction under an advisory lock (so collectors starting at
once apply each migration once), every migration newer than the database's version, and
refuses a database made by a newer collector. Migrations are only ever appended.

1. devices (each bound to one public key, with its current epoch), epochs (every (device,
   epoch) seen, its last stored seq, when it was superseded), windows (the counts/1 fields, one
   column per count, NULL = suppressed; primary key (device, epoch, seq)).
2. the roll-ups: windows_hourly and windows_daily per (device, gate, UTC hour/day), and
   rollup_dirty, the (device, hour) marks a collector writes in the transaction that stores
   windows of that hour (central.rollups refreshes what is marked).
3. the presentation_attacks count.
4. dashboard_users: the fleet dashboard's log-ins (name, role, scrypt hash; central.users), and
   windows_hourly's indexes on (gate, hour) and (hour) for the dashboard's hour ranges.
5. a BRIN index on windows (window_start) and an index on windows_daily (day), for the
   roll-up rebuild's day ranges.
"""

from __future__ import annotations

from typing import Any

from central.errors import CollectorError
from wire.telemetry import COUNT_FIELDS

MIGRATION_LOCK = 0x63656E7472616C  # pg_advisory_xact_lock id of the migration step ("central")
_COUNTS = ",\n    ".join(f"{name} integer" for name in COUNT_FIELDS)
# roll-ups: sums of the published counts (suppressed cells add nothing), the peak is a maximum
_SUMS = ",\n    ".join(f"{name} {'integer' if name == 'peak_in_view' else 'bigint'}"
                       for name in COUNT_FIELDS)

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "devices, epochs, windows", f"""
CREATE TABLE devices (
    device text PRIMARY KEY,
    public_key text NOT NULL UNIQUE,
    epoch bigint NOT NULL,              -- the current (latest) epoch
    first_seen double precision NOT NULL
);
CREATE TABLE epochs (
    device text NOT NULL REFERENCES devices,
    epoch bigint NOT NULL,
    last_seq bigint NOT NULL,           -- the last seq stored in this epoch
    first_seen double precision NOT NULL,
    superseded_at double precision,     -- when a newer epoch of the device was first stored
    PRIMARY KEY (device, epoch)
);
CREATE TABLE windows (
    device text NOT NULL,
    epoch bigint NOT NULL,
    seq bigint NOT NULL,
    gate text NOT NULL,
    window_start bigint NOT NULL,
    window_s integer NOT NULL,
    k integer NOT NULL,
    epsilon double precision,
    received_at double precision NOT NULL,
    {_COUNTS},
    PRIMARY KEY (device, epoch, seq)
);
"""),
    (2, "hourly and daily roll-ups", f"""
CREATE INDEX windows_device_start ON windows (device, window_start);
CREATE TABLE rollup_dirty (
    device text NOT NULL,
    hour bigint NOT NULL,               -- UTC hour start, epoch seconds
    PRIMARY KEY (device, hour)
);
CREATE TABLE windows_hourly (
    device text NOT NULL,
    gate text NOT NULL,
    hour bigint NOT NULL,
    windows integer NOT NULL,
    suppressed_cells integer NOT NULL,
    {_SUMS},
    PRIMARY KEY (device, hour, gate)
);
CREATE TABLE windows_daily (
    device text NOT NULL,
    gate text NOT NULL,
    day bigint NOT NULL,                -- UTC day start, epoch seconds
    windows integer NOT NULL,
    suppressed_cells integer NOT NULL,
    {_SUMS},
    PRIMARY KEY (device, day, gate)
);
CREATE INDEX windows_daily_gate_day ON windows_daily (gate, day);
"""),
    # a count field added after version 1 (a database made since has it already); the windows
    # stored before could not have counted it: 0
    (3, "presentation_attacks count", """
ALTER TABLE windows ADD COLUMN IF NOT EXISTS presentation_attacks integer DEFAULT 0;
ALTER TABLE windows_hourly ADD COLUMN IF NOT EXISTS presentation_attacks bigint DEFAULT 0;
ALTER TABLE windows_daily ADD COLUMN IF NOT EXISTS presentation_attacks bigint DEFAULT 0;
"""),
    (4, "dashboard users", """
CREATE TABLE dashboard_users (
    name text PRIMARY KEY,
    role text NOT NULL CHECK (role IN ('viewer', 'admin')),
    password_hash text NOT NULL,
    updated_at double precision NOT NULL
);
-- the dashboard's hour ranges, per gate and fleet-wide (the primary key leads with device)
CREATE INDEX windows_hourly_gate_hour ON windows_hourly (gate, hour);
CREATE INDEX windows_hourly_hour ON windows_hourly (hour);
"""),
    (5, "window_start BRIN index", """
-- windows arrive roughly in time order, so a block range index finds a day's windows in a few
-- pages (the roll-up rebuild, a day at a time; the docs' raw fleet queries) at a tiny size
CREATE INDEX windows_start_brin ON windows USING brin (window_start) WITH (autosummarize = on);
CREATE INDEX windows_daily_day ON windows_daily (day);
"""),
)
LATEST = MIGRATIONS[-1][0]


def migrate(conn: Any) -> int:
    """Bring the database to `LATEST` (a psycopg connection); the version it is at."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                     "description text NOT NULL, applied_at timestamptz NOT NULL "
                     "DEFAULT now())")
        row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        have = int(row[0])
        if have > LATEST:
            raise CollectorError(f"the database is at schema version {have}, newer than this "
                                 f"collector's {LATEST}: upgrade the collector")
        for version, description, sql in MIGRATIONS:
            if version > have:
                conn.execute(sql)
                conn.execute("INSERT INTO schema_version (version, description) "
                             "VALUES (%s, %s)", (version, description))
    return LATEST
