-- +goose Up
-- Issue 5: the audit trail. Append-only: rows are inserted by the servers
-- and the CLI, and leave only through retention (DELETE of old rows).

CREATE TABLE audit_events (
    -- AUTOINCREMENT: ids never go back, even after retention has deleted
    -- the newest rows, so AfterID paging never skips or repeats.
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    type       TEXT    NOT NULL CHECK (type <> ''),
    actor      TEXT    NOT NULL DEFAULT '',
    session_id TEXT    NOT NULL DEFAULT '',
    user_id    TEXT    NOT NULL DEFAULT '',
    client_id  TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    details    TEXT    CHECK (details IS NULL OR json_type(details) = 'object')
) STRICT;
-- Retention and --since/--until.
CREATE INDEX audit_events_time_idx ON audit_events (time);
-- audit list --user/--client/--session.
CREATE INDEX audit_events_user_idx ON audit_events (user_id, id) WHERE user_id <> '';
CREATE INDEX audit_events_client_idx ON audit_events (client_id, id) WHERE client_id <> '';
CREATE INDEX audit_events_session_idx ON audit_events (session_id, id) WHERE session_id <> '';

-- An audit trail that can be rewritten proves nothing. DELETE stays
-- possible for retention.
-- +goose StatementBegin
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE is not allowed');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_events;
