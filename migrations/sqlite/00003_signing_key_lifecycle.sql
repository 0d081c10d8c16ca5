-- +goose Up
-- Issue 4: the signing-key lifecycle (next -> active -> retired -> deleted,
-- or revoked) and change detection across processes (the CLI changes keys
-- under a running server; the server polls the counter).

ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER;

-- At most one next key per algorithm, as for active keys.
CREATE UNIQUE INDEX signing_keys_one_next_per_algorithm
    ON signing_keys (algorithm) WHERE state = 'next';

INSERT OR IGNORE INTO change_counters (name, version) VALUES ('signing_keys', 0);

-- SQLite triggers run per row; a counter that moves more than once per
-- transaction is still a counter that moved.
-- +goose StatementBegin
CREATE TRIGGER signing_keys_changed_insert AFTER INSERT ON signing_keys
BEGIN
    UPDATE change_counters SET version = version + 1 WHERE name = 'signing_keys';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER signing_keys_changed_update AFTER UPDATE ON signing_keys
BEGIN
    UPDATE change_counters SET version = version + 1 WHERE name = 'signing_keys';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER signing_keys_changed_delete AFTER DELETE ON signing_keys
BEGIN
    UPDATE change_counters SET version = version + 1 WHERE name = 'signing_keys';
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER signing_keys_changed_delete;
DROP TRIGGER signing_keys_changed_update;
DROP TRIGGER signing_keys_changed_insert;
DELETE FROM change_counters WHERE name = 'signing_keys';
DROP INDEX signing_keys_one_next_per_algorithm;
ALTER TABLE signing_keys DROP COLUMN revoked_at;
