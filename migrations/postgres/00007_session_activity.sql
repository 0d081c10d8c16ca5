-- Issue 5: session control. Counting and limiting live sessions, PostgreSQL.

-- +goose Up
-- idp sessions stats counts the sessions active in the last minutes
-- (last_seen_at) among those not ended. The partial index keeps ended
-- sessions, which pile up until their absolute expiry, out of the scan.
CREATE INDEX sessions_live_last_seen_at_idx ON sessions (last_seen_at) WHERE ended_at IS NULL;

-- The concurrent-session limit and the account page list a user's live
-- sessions; sessions_user_id_idx (00001) finds them, and a user has few.

-- +goose Down
DROP INDEX sessions_live_last_seen_at_idx;
