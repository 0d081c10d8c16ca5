-- Refresh tokens, opaque access tokens, revoked JWTs, offline grants and
-- change counters, SQLite.
--
-- Same conventions as 00001: STRICT tables, times as INTEGER unix
-- microseconds, booleans as INTEGER 0/1, string lists as JSON arrays,
-- SHA-256 hashes (BLOB) in place of tokens.

-- +goose Up

-- Existing grants were all made before offline_access was honoured: they
-- are bound to their login session.
ALTER TABLE grants ADD COLUMN offline INTEGER NOT NULL DEFAULT 0 CHECK (offline IN (0, 1));

-- One row per refresh token ever issued: a grant's family is its rows, and
-- a spent row (used_at set) points at the token that replaced it. Spent
-- rows are kept until the family's absolute expiry so that presenting one
-- again is recognized as reuse.
CREATE TABLE refresh_tokens (
    token_hash          BLOB    PRIMARY KEY,
    grant_id            TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id           TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id             TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes              TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(scopes) = 'array'),
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL, -- idle expiry
    absolute_expires_at INTEGER NOT NULL, -- the family's end
    used_at             INTEGER,
    -- Not a foreign key: an unspent successor can be removed at its idle
    -- expiry while the spent token that names it is kept.
    successor_hash      BLOB
) STRICT;
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
    token_hash BLOB    PRIMARY KEY,
    grant_id   TEXT    REFERENCES grants (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject    TEXT    NOT NULL,
    scopes     TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(scopes) = 'array'),
    audience   TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(audience) = 'array'),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX access_tokens_grant_id_idx ON access_tokens (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX access_tokens_client_id_idx ON access_tokens (client_id);
CREATE INDEX access_tokens_expires_at_idx ON access_tokens (expires_at);

-- The denylist of revoked JWT access tokens, by jti. An entry is needed
-- only until the token's own exp.
CREATE TABLE revoked_jwts (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX revoked_jwts_expires_at_idx ON revoked_jwts (expires_at);

-- Counters bumped in the same transaction as a change to what they count,
-- so that in-process caches can poll one row to learn whether to reload
-- (the idp CLI may change clients under a running server).
CREATE TABLE change_counters (
    name    TEXT    PRIMARY KEY,
    version INTEGER NOT NULL
) STRICT;
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
