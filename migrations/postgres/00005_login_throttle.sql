-- +goose Up
-- Issue 5: failed sign-ins counted per key (an account, a client IP) so
-- that every instance throttles on the same numbers.

-- A key is "account:" and the SHA-256 of the normalized email (never the
-- email itself: people type passwords into the email field) or "ip:" and
-- an address or IPv6 /64 prefix. prior_failures and prior_failure_at keep
-- the row's state from before its latest failure: RETURNING shows only the
-- new row, and the statement that counted a failure needs both.
CREATE TABLE login_throttles (
    key              text        PRIMARY KEY,
    failures         integer     NOT NULL CHECK (failures >= 0),
    window_start     timestamptz NOT NULL,
    last_failure_at  timestamptz NOT NULL,
    prior_failures   integer     NOT NULL DEFAULT 0,
    prior_failure_at timestamptz,
    expires_at       timestamptz NOT NULL
);
-- DeleteExpired.
CREATE INDEX login_throttles_expires_at_idx ON login_throttles (expires_at);

-- +goose Down
DROP TABLE login_throttles;
