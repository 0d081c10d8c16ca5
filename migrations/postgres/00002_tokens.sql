-- Refresh tokens, opaque access tokens, revoked JWTs, offline grants and
-- change counters, PostgreSQL.
--
-- Same conventions as 00001: timestamptz times, SHA-256 hashes (bytea) in
-- place of tokens, text[] lists that are NOT NULL DEFAULT '{}'.

-- +goose Up

-- Existing grants were all made before offline_access was honoured: they
-- are bound to their login session.
ALTER TABLE grants ADD COLUMN offline boolean NOT NULL DEFAULT false;

-- One row per refresh token ever issued: a grant's family is its rows, and
-- a spent row (used_at set) points at the token that replaced it. Spent
-- rows are kept until the family's absolute expiry so that presenting one
-- again is recognized as reuse.
CREATE TABLE refresh_tokens (
    token_hash          bytea       PRIMARY KEY,
    grant_id            text        NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id           text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id             text        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes              text[]      NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL,
    expires_at          timestamptz NOT NULL, -- idle expiry
    absolute_expires_at timestamptz NOT NULL, -- the family's end
    used_at             timestamptz,
    -- Not a foreign key: an unspent successor can be removed at its idle
    -- expiry while the spent token that names it is kept.
    successor_hash      bytea
);
-- The family of a grant, and the cascade from grants.
CREATE INDEX refresh_tokens_grant_id_idx ON refresh_tokens (grant_id);
-- The cascades from clients (DeleteClient) and users.
CREATE INDEX refresh_tokens_client_id_idx ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (user_id);
-- DeleteExpired: absolute_expires_at < now OR (unspent AND expires_at < now).
CREATE INDEX refresh_tokens_absolute_expires_at_idx ON refresh_tokens (absolute_expires_at);
CREATE INDEX refresh_tokens_unspent_expires_at_idx ON refresh_tokens (expires_at) WHERE used_at IS NULL;

-- Opaque (reference) access tokens. grant_id is NULL, not '', for machine
-- tokens (client credentials), which have no grant: a foreign key needs
-- NULL for "none".
CREATE TABLE access_tokens (
    token_hash bytea       PRIMARY KEY,
    grant_id   text        REFERENCES grants (id) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject    text        NOT NULL,
    scopes     text[]      NOT NULL DEFAULT '{}',
    audience   text[]      NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX access_tokens_grant_id_idx ON access_tokens (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX access_tokens_client_id_idx ON access_tokens (client_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at);

-- The denylist of revoked JWT access tokens, by jti. An entry is needed
-- only until the token's own exp.
CREATE TABLE revoked_jwts (
    jti        text        PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_jwts_expires_at_idx ON revoked_jwts (expires_at);

-- Counters bumped in the same transaction as a change to what they count,
-- so that in-process caches on every replica can poll one row to learn
-- whether to reload.
CREATE TABLE change_counters (
    name    text   PRIMARY KEY,
    version bigint NOT NULL
);
INSERT INTO change_counters (name, version) VALUES ('clients', 0);

-- The user lookups need no new index: RevokeUserGrants and EndUserSessions
-- find the user's grants and sessions through grants_user_id_idx and
-- sessions_user_id_idx, and EndSession its grants through
-- grants_session_id_idx, all from 00001.

-- +goose Down
DROP TABLE change_counters;
DROP TABLE revoked_jwts;
DROP TABLE access_tokens;
DROP TABLE refresh_tokens;
ALTER TABLE grants DROP COLUMN offline;
