-- Gatehouse schema, PostgreSQL.
--
-- Times are timestamptz (microsecond precision, what storage promises).
-- Secrets are stored only as SHA-256 hashes (bytea). Columns that hold
-- "absent" as an empty string in Go are NOT NULL DEFAULT '' so there is one
-- representation of absence, not two.

-- +goose Up
CREATE TABLE users (
    id             text        PRIMARY KEY,
    email          text        NOT NULL,
    email_verified boolean     NOT NULL DEFAULT false,
    name           text        NOT NULL DEFAULT '',
    password_hash  text        NOT NULL DEFAULT '',
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);
-- ListUsers orders by (created_at, id).
CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE clients (
    id          text        PRIMARY KEY,
    secret_hash bytea,      -- NULL for public clients
    -- RFC 7591 metadata as one document, so new fields need no migration.
    metadata    jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX clients_created_at_idx ON clients (created_at, id);

CREATE TABLE sessions (
    id           text        PRIMARY KEY,
    secret_hash  bytea       NOT NULL,
    user_id      text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    timestamptz NOT NULL,
    amr          text[]      NOT NULL DEFAULT '{}',
    ip           text        NOT NULL DEFAULT '',
    user_agent   text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    CONSTRAINT sessions_secret_hash_key UNIQUE (secret_hash)
);
-- Listing and ending a user's sessions, and the cascade from users.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- DeleteExpired.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- session_id columns below are deliberately not foreign keys: a session row
-- is removed by DeleteExpired when its absolute expiry passes, and that must
-- not silently delete or rewrite the grants and codes that mention it.
-- Whether an ended or missing session still counts is the caller's decision.

CREATE TABLE auth_requests (
    id_hash               bytea       PRIMARY KEY,
    client_id             text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri          text        NOT NULL,
    scopes                text[]      NOT NULL DEFAULT '{}',
    state                 text        NOT NULL DEFAULT '',
    nonce                 text        NOT NULL DEFAULT '',
    code_challenge        text        NOT NULL DEFAULT '',
    code_challenge_method text        NOT NULL DEFAULT '',
    prompt                text[]      NOT NULL DEFAULT '{}',
    max_age               bigint,     -- NULL when the request had none
    login_hint            text        NOT NULL DEFAULT '',
    ui_locales            text        NOT NULL DEFAULT '',
    session_id            text        NOT NULL DEFAULT '',
    login_at              timestamptz,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL
);
CREATE INDEX auth_requests_client_id_idx ON auth_requests (client_id);
CREATE INDEX auth_requests_expires_at_idx ON auth_requests (expires_at);

CREATE TABLE auth_codes (
    code_hash             bytea       PRIMARY KEY,
    client_id             text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id               text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id            text        NOT NULL DEFAULT '',
    grant_id              text        NOT NULL,
    redirect_uri          text        NOT NULL,
    scopes                text[]      NOT NULL DEFAULT '{}',
    nonce                 text        NOT NULL DEFAULT '',
    code_challenge        text        NOT NULL DEFAULT '',
    code_challenge_method text        NOT NULL DEFAULT '',
    auth_time             timestamptz NOT NULL,
    amr                   text[]      NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz
);
CREATE INDEX auth_codes_client_id_idx ON auth_codes (client_id);
CREATE INDEX auth_codes_user_id_idx ON auth_codes (user_id);
CREATE INDEX auth_codes_expires_at_idx ON auth_codes (expires_at);

CREATE TABLE grants (
    id         text        PRIMARY KEY,
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    session_id text        NOT NULL DEFAULT '',
    scopes     text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX grants_user_id_idx ON grants (user_id);
CREATE INDEX grants_client_id_idx ON grants (client_id);
-- Ending a session revokes the grants bound to it.
CREATE INDEX grants_session_id_idx ON grants (session_id) WHERE session_id <> '';

CREATE TABLE consents (
    user_id    text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
-- The primary key serves lookups by user; this one serves the cascade from
-- clients.
CREATE INDEX consents_client_id_idx ON consents (client_id);

CREATE TABLE signing_keys (
    id                    text        PRIMARY KEY,
    algorithm             text        NOT NULL,
    state                 text        NOT NULL
        CONSTRAINT signing_keys_state_check CHECK (state IN ('next', 'active', 'retired', 'revoked')),
    private_key_encrypted bytea       NOT NULL,
    -- bytea, not jsonb: the JWK comes back byte for byte as it was stored.
    public_jwk            bytea       NOT NULL,
    created_at            timestamptz NOT NULL,
    activated_at          timestamptz,
    retired_at            timestamptz
);
-- At most one active signing key per algorithm: concurrent instances that each try
-- to create the first key agree through this index (one insert wins).
CREATE UNIQUE INDEX signing_keys_one_active_per_algorithm
    ON signing_keys (algorithm) WHERE state = 'active';
CREATE INDEX signing_keys_created_at_idx ON signing_keys (created_at, id);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE consents;
DROP TABLE grants;
DROP TABLE auth_codes;
DROP TABLE auth_requests;
DROP TABLE sessions;
DROP TABLE clients;
DROP TABLE users;
