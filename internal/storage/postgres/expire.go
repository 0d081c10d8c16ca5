package postgres

import (
	"context"
	"fmt"
	"time"
)

// DeleteExpired removes auth requests, codes, opaque access tokens and
// revoked-JWT entries and login throttle counters whose expires_at is before now,
// back-channel logouts delivered or given up before now, sessions whose
// absolute expiry is before now, and refresh tokens whose family has ended
// or which are unspent and idle past their expiry (a spent token stays
// until its family ends, so that its reuse is still recognized). One
// statement, so the count is of one consistent sweep.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `
		WITH r  AS (DELETE FROM auth_requests WHERE expires_at < $1 RETURNING 1),
		     c  AS (DELETE FROM auth_codes    WHERE expires_at < $1 RETURNING 1),
		     s  AS (DELETE FROM sessions      WHERE expires_at < $1 RETURNING 1),
		     rt AS (DELETE FROM refresh_tokens
		            WHERE absolute_expires_at < $1 OR (used_at IS NULL AND expires_at < $1)
		            RETURNING 1),
		     at AS (DELETE FROM access_tokens WHERE expires_at < $1 RETURNING 1),
		     j  AS (DELETE FROM revoked_jwts  WHERE expires_at < $1 RETURNING 1),
		     lt AS (DELETE FROM login_throttles WHERE expires_at < $1 RETURNING 1),
		     b  AS (DELETE FROM backchannel_logouts
		            WHERE delivered_at < $1 OR failed_at < $1
		            RETURNING 1)
		SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM c) + (SELECT count(*) FROM s)
		     + (SELECT count(*) FROM rt) + (SELECT count(*) FROM at) + (SELECT count(*) FROM j)
		     + (SELECT count(*) FROM lt) + (SELECT count(*) FROM b)`,
		now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("delete expired: %w", err)
	}
	return n, nil
}
