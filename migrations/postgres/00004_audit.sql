-- +goose Up
-- Issue 5: the audit trail. Append-only: rows are inserted by the servers
-- and the CLI, and leave only through retention (DELETE of old rows).

CREATE TABLE audit_events (
    -- Assigned here, increasing: the order of the trail and the cursor
    -- for paging (AfterID).
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time       timestamptz NOT NULL,
    type       text        NOT NULL CHECK (type <> ''),
    actor      text        NOT NULL DEFAULT '',
    session_id text        NOT NULL DEFAULT '',
    user_id    text        NOT NULL DEFAULT '',
    client_id  text        NOT NULL DEFAULT '',
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT '',
    details    jsonb       CHECK (details IS NULL OR jsonb_typeof(details) = 'object')
);
-- Retention (DELETE ... WHERE time < $1) and --since/--until.
CREATE INDEX audit_events_time_idx ON audit_events (time);
-- audit list --user/--client/--session: the filter, then the order by id.
-- Partial, because most events leave one or two of these empty.
CREATE INDEX audit_events_user_idx ON audit_events (user_id, id) WHERE user_id <> '';
CREATE INDEX audit_events_client_idx ON audit_events (client_id, id) WHERE client_id <> '';
CREATE INDEX audit_events_session_idx ON audit_events (session_id, id) WHERE session_id <> '';

-- An audit trail that can be rewritten proves nothing: refuse UPDATE and
-- TRUNCATE whoever asks (a bug, an operator with psql). DELETE stays
-- possible for retention.
-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_events_no_update
    BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only();
