-- Failed sign-ins counted per key, SQLite. Same conventions as 00001:
-- STRICT tables, times as INTEGER unix microseconds.

-- +goose Up

-- A key is "account:" and the SHA-256 of the normalized email (never the
-- email itself: people type passwords into the email field) or "ip:" and
-- an address or IPv6 /64 prefix. prior_failures and prior_failure_at keep
-- the row's state from before its latest failure: RETURNING shows only the
-- new row, and the statement that counted a failure needs both.
CREATE TABLE login_throttles (
    key              TEXT    PRIMARY KEY,
    failures         INTEGER NOT NULL CHECK (failures >= 0),
    window_start     INTEGER NOT NULL,
    last_failure_at  INTEGER NOT NULL,
    prior_failures   INTEGER NOT NULL DEFAULT 0,
    prior_failure_at INTEGER,
    expires_at       INTEGER NOT NULL
) STRICT;
-- DeleteExpired.
CREATE INDEX login_throttles_expires_at_idx ON login_throttles (expires_at);

-- +goose Down
DROP TABLE login_throttles;
