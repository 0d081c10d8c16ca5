-- Back-channel logout (OIDC Back-Channel Logout 1.0), SQLite.
--
-- An outbox: ending a login session inserts, in the same transaction, one
-- row per client that took part in the session and registered a
-- backchannel_logout_uri. A deliverer claims due rows, sends the logout
-- token and records the outcome; the janitor removes finished rows. Same
-- conventions as 00001: STRICT, times as INTEGER unix microseconds.

-- +goose Up
CREATE TABLE backchannel_logouts (
    id              INTEGER PRIMARY KEY,
    -- Not foreign keys: the session row goes at its absolute expiry, the
    -- user row may go too, and the logout must still be told.
    session_id      TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    client_id       TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    -- When the row is next due. A claim moves it to the end of the claim's
    -- lease, so another process picks the row up only if the claimant dies.
    next_attempt_at INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    delivered_at    INTEGER,
    failed_at       INTEGER,
    -- One delivery per client and session: ending an ended session again
    -- reaches only clients that joined it since.
    UNIQUE (session_id, client_id)
) STRICT;
CREATE INDEX backchannel_logouts_due_idx ON backchannel_logouts (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX backchannel_logouts_client_id_idx ON backchannel_logouts (client_id);

-- +goose Down
DROP TABLE backchannel_logouts;
