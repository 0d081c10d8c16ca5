package postgres

import (
	"context"
	"fmt"
	"time"
)

// DeleteExpired removes auth requests and codes whose expires_at is before
// now, and sessions whose absolute expiry is before now. One statement, so
// the count is of one consistent sweep.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `
		WITH r AS (DELETE FROM auth_requests WHERE expires_at < $1 RETURNING 1),
		     c AS (DELETE FROM auth_codes    WHERE expires_at < $1 RETURNING 1),
		     s AS (DELETE FROM sessions      WHERE expires_at < $1 RETURNING 1)
		SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM c) + (SELECT count(*) FROM s)`,
		now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("delete expired: %w", err)
	}
	return n, nil
}
