-- Back-channel logout (OIDC Back-Channel Logout 1.0), PostgreSQL.
--
-- An outbox: ending a login session inserts, in the same transaction, one
-- row per client that took part in the session and registered a
-- backchannel_logout_uri. A deliverer claims due rows, sends the logout
-- token and records the outcome; the janitor removes finished rows. So
-- every path that ends a session (logout, an operator, a disabled user)
-- gets deliveries, and a crash between the end and the delivery loses
-- nothing.

-- +goose Up
CREATE TABLE backchannel_logouts (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Not foreign keys: the session row goes at its absolute expiry, the
    -- user row may go too, and the logout must still be told.
    session_id      text        NOT NULL,
    user_id         text        NOT NULL,
    client_id       text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL,
    -- When the row is next due. A claim moves it to the end of the claim's
    -- lease, so another instance picks the row up only if the claimant
    -- dies.
    next_attempt_at timestamptz NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    last_error      text        NOT NULL DEFAULT '',
    delivered_at    timestamptz,
    failed_at       timestamptz,
    -- One delivery per client and session: ending an ended session again
    -- reaches only clients that joined it since.
    CONSTRAINT backchannel_logouts_session_client_key UNIQUE (session_id, client_id)
);
-- Claiming: the due, unfinished rows.
CREATE INDEX backchannel_logouts_due_idx ON backchannel_logouts (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
-- The cascade from clients.
CREATE INDEX backchannel_logouts_client_id_idx ON backchannel_logouts (client_id);

-- +goose Down
DROP TABLE backchannel_logouts;
