package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// GetLoginThrottles returns the counter of each key; missing or expired
// counters come back empty.
func (db *DB) GetLoginThrottles(ctx context.Context, keys []string, now time.Time) ([]storage.LoginThrottle, error) {
	out := make([]storage.LoginThrottle, len(keys))
	index := make(map[string][]int, len(keys))
	for i, k := range keys {
		out[i].Key = k
		index[k] = append(index[k], i)
	}
	rows, err := db.pool.Query(ctx, `
		SELECT key, failures, window_start, last_failure_at, expires_at
		FROM login_throttles WHERE key = ANY($1) AND expires_at > $2`, keys, now)
	if err != nil {
		return nil, fmt.Errorf("get login throttles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t storage.LoginThrottle
		if err := rows.Scan(&t.Key, &t.Failures, &t.WindowStart, &t.LastFailureAt, &t.ExpiresAt); err != nil {
			return nil, fmt.Errorf("get login throttles: %w", err)
		}
		t.WindowStart, t.LastFailureAt, t.ExpiresAt = t.WindowStart.UTC(), t.LastFailureAt.UTC(), t.ExpiresAt.UTC()
		for _, i := range index[t.Key] {
			out[i] = t
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get login throttles: %w", err)
	}
	return out, nil
}

// RecordLoginFailure counts a failure against each key, one upsert per
// key. The row lock the upsert takes serializes concurrent callers on a
// key, and each sees the row as the previous one left it, so every call is
// counted once. The keys are not in one transaction: each count stands on
// its own, and no two callers can deadlock over the order of their keys.
func (db *DB) RecordLoginFailure(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]storage.LoginThrottle, error) {
	out := make([]storage.LoginThrottle, 0, len(keys))
	for _, k := range keys {
		t := storage.LoginThrottle{Key: k}
		// Postgres evaluates every SET expression against the old row, so
		// prior_* receive what the row held before this failure.
		err := db.pool.QueryRow(ctx, `
			INSERT INTO login_throttles AS t
			    (key, failures, window_start, last_failure_at, prior_failures, prior_failure_at, expires_at)
			VALUES ($1, 1, $2, $2, 0, NULL, $3)
			ON CONFLICT (key) DO UPDATE SET
			    failures         = CASE WHEN t.window_start <= $4 THEN 1 ELSE t.failures + 1 END,
			    window_start     = CASE WHEN t.window_start <= $4 THEN excluded.window_start ELSE t.window_start END,
			    prior_failures   = t.failures,
			    prior_failure_at = t.last_failure_at,
			    last_failure_at  = excluded.last_failure_at,
			    expires_at       = excluded.expires_at
			RETURNING failures, window_start, last_failure_at, prior_failures, prior_failure_at, expires_at`,
			k, now, now.Add(window), now.Add(-window)).
			Scan(&t.Failures, &t.WindowStart, &t.LastFailureAt, &t.PriorFailures, &t.PriorFailureAt, &t.ExpiresAt)
		if err != nil {
			return nil, fmt.Errorf("record login failure: %w", err)
		}
		t.WindowStart, t.LastFailureAt, t.ExpiresAt = t.WindowStart.UTC(), t.LastFailureAt.UTC(), t.ExpiresAt.UTC()
		t.PriorFailureAt = utcPtr(t.PriorFailureAt)
		out = append(out, t)
	}
	return out, nil
}

// ForgiveLoginFailure takes one failure back from key's counter.
func (db *DB) ForgiveLoginFailure(ctx context.Context, key string) error {
	_, err := db.pool.Exec(ctx, `
		UPDATE login_throttles SET failures = failures - 1 WHERE key = $1 AND failures > 0`, key)
	if err != nil {
		return fmt.Errorf("forgive login failure: %w", err)
	}
	return nil
}

// ClearLoginThrottle deletes key's counter.
func (db *DB) ClearLoginThrottle(ctx context.Context, key string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM login_throttles WHERE key = $1`, key); err != nil {
		return fmt.Errorf("clear login throttle: %w", err)
	}
	return nil
}
