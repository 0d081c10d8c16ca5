-- +goose Up
-- Issue 4: the signing-key lifecycle (next -> active -> retired -> deleted,
-- or revoked) and change notification across instances.

ALTER TABLE signing_keys ADD COLUMN revoked_at timestamptz;

-- At most one next key per algorithm, as for active keys: two instances
-- that both see no next key and each create one agree through this index.
CREATE UNIQUE INDEX signing_keys_one_next_per_algorithm
    ON signing_keys (algorithm) WHERE state = 'next';

INSERT INTO change_counters (name, version) VALUES ('signing_keys', 0)
    ON CONFLICT (name) DO NOTHING;

-- Any change to the table, by a server, the CLI or psql, moves the counter
-- on in the same transaction and notifies listeners at commit. Once per
-- statement: a rotation that touches three rows is one notification.
-- +goose StatementBegin
CREATE FUNCTION signing_keys_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_counters (name, version) VALUES ('signing_keys', 1)
        ON CONFLICT (name) DO UPDATE SET version = change_counters.version + 1;
    PERFORM pg_notify('gatehouse_signing_keys', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER signing_keys_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION signing_keys_changed();

-- +goose Down
DROP TRIGGER signing_keys_changed ON signing_keys;
DROP FUNCTION signing_keys_changed();
DELETE FROM change_counters WHERE name = 'signing_keys';
DROP INDEX signing_keys_one_next_per_algorithm;
ALTER TABLE signing_keys DROP COLUMN revoked_at;
