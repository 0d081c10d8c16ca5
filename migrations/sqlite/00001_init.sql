-- Gatehouse schema, SQLite.
--
-- Tables are STRICT, so a value of the wrong type is an error instead of
-- being stored under SQLite's type affinity rules.
-- Times are INTEGER unix microseconds: exact, sortable, and the precision
-- storage promises (text timestamps compare wrongly across formats and lose
-- precision). Booleans are INTEGER 0/1. String lists are TEXT holding a JSON
-- array. Secrets are stored only as SHA-256 hashes (BLOB).
-- Foreign keys need PRAGMA foreign_keys=ON on every connection; the backend
-- sets it in the connection string.

-- +goose Up
CREATE TABLE users (
    id             TEXT    PRIMARY KEY,
    email          TEXT    NOT NULL,
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    name           TEXT    NOT NULL DEFAULT '',
    password_hash  TEXT    NOT NULL DEFAULT '',
    disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
) STRICT;
-- ListUsers orders by (created_at, id).
CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE clients (
    id          TEXT    PRIMARY KEY,
    secret_hash BLOB,   -- NULL for public clients
    -- RFC 7591 metadata as one JSON document, so new fields need no migration.
    metadata    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX clients_created_at_idx ON clients (created_at, id);

CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    secret_hash  BLOB    NOT NULL,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    INTEGER NOT NULL,
    amr          TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(amr) = 'array'),
    ip           TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    CONSTRAINT sessions_secret_hash_key UNIQUE (secret_hash)
) STRICT;
-- Listing and ending a user's sessions, and the cascade from users.
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- DeleteExpired.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- session_id columns below are deliberately not foreign keys: a session row
-- is removed by DeleteExpired when its absolute expiry passes, and that must
-- not silently delete or rewrite the grants and codes that mention it.
-- Whether an ended or missing session still counts is the caller's decision.

CREATE TABLE auth_requests (
    id_hash               BLOB    PRIMARY KEY,
    client_id             TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    redirect_uri          TEXT    NOT NULL,
    scopes                TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(scopes) = 'array'),
    state                 TEXT    NOT NULL DEFAULT '',
    nonce                 TEXT    NOT NULL DEFAULT '',
    code_challenge        TEXT    NOT NULL DEFAULT '',
    code_challenge_method TEXT    NOT NULL DEFAULT '',
    prompt                TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(prompt) = 'array'),
    max_age               INTEGER, -- NULL when the request had none
    login_hint            TEXT    NOT NULL DEFAULT '',
    ui_locales            TEXT    NOT NULL DEFAULT '',
    session_id            TEXT    NOT NULL DEFAULT '',
    login_at              INTEGER,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_requests_client_id_idx ON auth_requests (client_id);
CREATE INDEX auth_requests_expires_at_idx ON auth_requests (expires_at);

CREATE TABLE auth_codes (
    code_hash             BLOB    PRIMARY KEY,
    client_id             TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id               TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id            TEXT    NOT NULL DEFAULT '',
    grant_id              TEXT    NOT NULL,
    redirect_uri          TEXT    NOT NULL,
    scopes                TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(scopes) = 'array'),
    nonce                 TEXT    NOT NULL DEFAULT '',
    code_challenge        TEXT    NOT NULL DEFAULT '',
    code_challenge_method TEXT    NOT NULL DEFAULT '',
    auth_time             INTEGER NOT NULL,
    amr                   TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(amr) = 'array'),
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    used_at               INTEGER
) STRICT;
CREATE INDEX auth_codes_client_id_idx ON auth_codes (client_id);
CREATE INDEX auth_codes_user_id_idx ON auth_codes (user_id);
CREATE INDEX auth_codes_expires_at_idx ON auth_codes (expires_at);

CREATE TABLE grants (
    id         TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    session_id TEXT    NOT NULL DEFAULT '',
    scopes     TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(scopes) = 'array'),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX grants_user_id_idx ON grants (user_id);
CREATE INDEX grants_client_id_idx ON grants (client_id);
-- Ending a session revokes the grants bound to it.
CREATE INDEX grants_session_id_idx ON grants (session_id) WHERE session_id <> '';

CREATE TABLE consents (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(scopes) = 'array'),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;
-- The primary key serves lookups by user; this one serves the cascade from
-- clients.
CREATE INDEX consents_client_id_idx ON consents (client_id);

CREATE TABLE signing_keys (
    id                    TEXT    PRIMARY KEY,
    algorithm             TEXT    NOT NULL,
    state                 TEXT    NOT NULL
        CHECK (state IN ('next', 'active', 'retired', 'revoked')),
    private_key_encrypted BLOB    NOT NULL,
    public_jwk            BLOB    NOT NULL, -- the JWK bytes exactly as stored
    created_at            INTEGER NOT NULL,
    activated_at          INTEGER,
    retired_at            INTEGER
) STRICT;
-- At most one active signing key per algorithm: concurrent instances that
-- each try to create the first key agree through this index (one insert
-- wins).
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
