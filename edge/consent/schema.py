"""Versioned schema migrations of the consent store.

`MIGRATIONS[i]` takes the store from version i to i+1; applied versions are rows of the
`schema_version` table. A store whose version is above `LATEST` is refused, never downgraded.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    [  # 1: consents, templates, hash-chained audit, telemetry outbox, staff accounts
        """CREATE TABLE schema_version (
               version INTEGER PRIMARY KEY,
               applied_at REAL NOT NULL)""",
        """CREATE TABLE consents (
               consent_id TEXT PRIMARY KEY,
               ref_hash BLOB,                -- HMAC(device secret, reference); NULL once gone
               code_hash BLOB UNIQUE,        -- HMAC of the withdrawal code; NULL once gone
               purpose TEXT NOT NULL,
               scope TEXT NOT NULL,          -- e.g. flight and date
               granted_at REAL NOT NULL,
               expires_at REAL NOT NULL,
               boarded_at REAL,
               withdrawn_at REAL)""",
        "CREATE INDEX consents_ref ON consents(ref_hash)",
        "CREATE INDEX consents_expiry ON consents(expires_at)",
        """CREATE TABLE templates (
               template_id INTEGER PRIMARY KEY AUTOINCREMENT,
               consent_id TEXT NOT NULL REFERENCES consents(consent_id) ON DELETE CASCADE,
               model_name TEXT NOT NULL,
               dim INTEGER NOT NULL,
               created_at REAL NOT NULL,
               expires_at REAL NOT NULL,
               embedding BLOB NOT NULL)""",
        "CREATE INDEX templates_consent ON templates(consent_id)",
        "CREATE INDEX templates_expiry ON templates(expires_at)",
        """CREATE TABLE audit (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               at REAL NOT NULL,
               event TEXT NOT NULL,
               actor TEXT NOT NULL,
               subject TEXT,
               reason TEXT,
               prev_hash BLOB NOT NULL,
               row_hash BLOB NOT NULL)""",
        """CREATE TABLE outbox (
               seq INTEGER PRIMARY KEY AUTOINCREMENT,
               created_at REAL NOT NULL,
               payload BLOB NOT NULL)""",
        """CREATE TABLE staff (
               name TEXT PRIMARY KEY,
               role TEXT NOT NULL,
               password_hash TEXT NOT NULL,
               disabled INTEGER NOT NULL DEFAULT 0,
               updated_at REAL NOT NULL)""",
    ],
    [  # 2: raw counts of telemetry's open window, so a restart loses none (edge.telemetry)
        """CREATE TABLE open_window (
               window_start INTEGER PRIMARY KEY,   -- aligned start, epoch s
               window_s INTEGER NOT NULL,
               counts TEXT NOT NULL,              -- JSON {field: raw count}; never leaves the box
               saved_at REAL NOT NULL)""",
    ],
    [  # 3: telemetry epochs: a random id of this copy of the store, renewed by the uplink at
       # every start (edge.telemetry.outbox), so a restored or cloned store's repeated sequence
       # numbers reach central under a new epoch; rows queued before this migration: epoch 0
        "ALTER TABLE outbox ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE telemetry_epoch (
               id INTEGER PRIMARY KEY CHECK (id = 1),
               epoch INTEGER NOT NULL CHECK (epoch BETWEEN 1 AND 9007199254740991),
               renewed_at REAL NOT NULL)""",
        # random() & (2^53 - 2) is even in 0..2^53-2: + 1 gives 1..2^53-1 (never 0)
        """INSERT INTO telemetry_epoch (id, epoch, renewed_at)
           VALUES (1, (random() & 9007199254740990) + 1,
                   (julianday('now') - 2440587.5) * 86400.0)""",
    ],
    [  # 4: token mode (edge.consent.sealed): a template sealed with a key only the traveller
       # holds; its `embedding` is nonce || AES-256-GCM ciphertext || tag, never loaded by the
       # gallery. Same table, so withdrawal, boarding, purge and replacement delete it as now
        "ALTER TABLE templates ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN "
        "(0, 1))",
    ],
    [  # 5: how many embeddings a template averages (edge.consent.gallery weighs such a
       # template in the FPIR rule: averaged templates score higher against strangers)
        "ALTER TABLE templates ADD COLUMN images INTEGER NOT NULL DEFAULT 1 CHECK (images "
        "BETWEEN 1 AND 10)",
    ],
    [  # 6: the lane board's "Today" counts (edge.kiosk.board_counts), so a restart keeps
       # them; anonymous counts of the local day only, never leaving the box
        """CREATE TABLE board_counts (
               day TEXT NOT NULL,                 -- local date, YYYY-MM-DD
               field TEXT NOT NULL,               -- e.g. granted, refused
               count INTEGER NOT NULL CHECK (count >= 0),
               PRIMARY KEY (day, field))""",
    ],
]

LATEST = len(MIGRATIONS)
