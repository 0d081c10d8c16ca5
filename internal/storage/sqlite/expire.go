package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DeleteExpired removes auth requests and codes whose expires_at is before
// now, and sessions whose absolute expiry is before now, in one
// transaction.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM auth_requests WHERE expires_at < ?`,
			`DELETE FROM auth_codes WHERE expires_at < ?`,
			`DELETE FROM sessions WHERE expires_at < ?`,
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
