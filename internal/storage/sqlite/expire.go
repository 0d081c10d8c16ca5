package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DeleteExpired removes auth requests, codes, opaque access tokens and
// revoked-JWT entries and login throttle counters whose expires_at is before now,
// back-channel logouts delivered or given up before now, sessions whose
// absolute expiry is before now, and refresh tokens whose family has ended
// or which are unspent and idle past their expiry (a spent token stays
// until its family ends, so that its reuse is still recognized), in one
// transaction.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM auth_requests WHERE expires_at < ?`,
			`DELETE FROM auth_codes WHERE expires_at < ?`,
			`DELETE FROM sessions WHERE expires_at < ?`,
			`DELETE FROM refresh_tokens
			 WHERE absolute_expires_at < ?1 OR (used_at IS NULL AND expires_at < ?1)`,
			`DELETE FROM access_tokens WHERE expires_at < ?`,
			`DELETE FROM revoked_jwts WHERE expires_at < ?`,
			`DELETE FROM login_throttles WHERE expires_at < ?`,
			`DELETE FROM backchannel_logouts WHERE delivered_at < ?1 OR failed_at < ?1`,
		} {
			res, err := tx.ExecContext(ctx, q, micros(now))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired: %w", err)
	}
	return total, nil
}
