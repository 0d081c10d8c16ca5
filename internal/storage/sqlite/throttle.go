package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// GetLoginThrottles returns the counter of each key; missing or expired
// counters come back empty. One query per key: there are two keys per
// sign-in, and SQLite has no array parameter.
func (db *DB) GetLoginThrottles(ctx context.Context, keys []string, now time.Time) ([]storage.LoginThrottle, error) {
	out := make([]storage.LoginThrottle, len(keys))
	for i, k := range keys {
		var windowStart, last, expires int64
		t := storage.LoginThrottle{Key: k}
		err := db.db.QueryRowContext(ctx, `
			SELECT failures, window_start, last_failure_at, expires_at
			FROM login_throttles WHERE key = ? AND expires_at > ?`, k, micros(now)).
			Scan(&t.Failures, &windowStart, &last, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("get login throttles: %w", err)
		default:
			t.WindowStart, t.LastFailureAt, t.ExpiresAt = fromMicros(windowStart), fromMicros(last), fromMicros(expires)
		}
		out[i] = t
	}
	return out, nil
}

// RecordLoginFailure counts a failure against each key, one upsert per
// key, all in one write transaction (SQLite serializes writers anyway;
// one transaction takes the lock once).
func (db *DB) RecordLoginFailure(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]storage.LoginThrottle, error) {
	out := make([]storage.LoginThrottle, 0, len(keys))
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			var (
				t                          = storage.LoginThrottle{Key: k}
				windowStart, last, expires int64
				priorAt                    sql.NullInt64
			)
			// SQLite evaluates every SET expression against the old row,
			// so prior_* receive what the row held before this failure.
			err := tx.QueryRowContext(ctx, `
				INSERT INTO login_throttles
				    (key, failures, window_start, last_failure_at, prior_failures, prior_failure_at, expires_at)
				VALUES (?1, 1, ?2, ?2, 0, NULL, ?3)
				ON CONFLICT (key) DO UPDATE SET
				    failures         = CASE WHEN login_throttles.window_start <= ?4 THEN 1 ELSE login_throttles.failures + 1 END,
				    window_start     = CASE WHEN login_throttles.window_start <= ?4 THEN excluded.window_start ELSE login_throttles.window_start END,
				    prior_failures   = login_throttles.failures,
				    prior_failure_at = login_throttles.last_failure_at,
				    last_failure_at  = excluded.last_failure_at,
				    expires_at       = excluded.expires_at
				RETURNING failures, window_start, last_failure_at, prior_failures, prior_failure_at, expires_at`,
				k, micros(now), micros(now.Add(window)), micros(now.Add(-window))).
				Scan(&t.Failures, &windowStart, &last, &t.PriorFailures, &priorAt, &expires)
			if err != nil {
				return err
			}
			t.WindowStart, t.LastFailureAt, t.ExpiresAt = fromMicros(windowStart), fromMicros(last), fromMicros(expires)
			t.PriorFailureAt = fromNullMicros(priorAt)
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record login failure: %w", err)
	}
	return out, nil
}

// ForgiveLoginFailure takes one failure back from key's counter.
func (db *DB) ForgiveLoginFailure(ctx context.Context, key string) error {
	_, err := db.db.ExecContext(ctx, `
		UPDATE login_throttles SET failures = failures - 1 WHERE key = ? AND failures > 0`, key)
	if err != nil {
		return fmt.Errorf("forgive login failure: %w", err)
	}
	return nil
}

// ClearLoginThrottle deletes key's counter.
func (db *DB) ClearLoginThrottle(ctx context.Context, key string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM login_throttles WHERE key = ?`, key); err != nil {
		return fmt.Errorf("clear login throttle: %w", err)
	}
	return nil
}
