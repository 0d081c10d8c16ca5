package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const backchannelColumns = `id, session_id, user_id, client_id, created_at, next_attempt_at,
	attempts, last_error, delivered_at, failed_at`

func scanBackchannelLogout(row scanner) (storage.BackchannelLogout, error) {
	var b storage.BackchannelLogout
	err := row.Scan(&b.ID, &b.SessionID, &b.UserID, &b.ClientID, &b.CreatedAt, &b.NextAttemptAt,
		&b.Attempts, &b.LastError, &b.DeliveredAt, &b.FailedAt)
	if err != nil {
		return storage.BackchannelLogout{}, err
	}
	b.CreatedAt = b.CreatedAt.UTC()
	b.NextAttemptAt = b.NextAttemptAt.UTC()
	b.DeliveredAt = utcPtr(b.DeliveredAt)
	b.FailedAt = utcPtr(b.FailedAt)
	return b, nil
}

// queueBackchannelLogouts adds, inside tx, a back-channel logout for every
// client that took part in one of the sessions (a grant made in it, offline
// or not, revoked or not) and registered a backchannel_logout_uri. The
// unique (session_id, client_id) key makes a second end of a session add
// only the clients that joined since.
func queueBackchannelLogouts(ctx context.Context, tx pgx.Tx, sessionIDs []string, now time.Time) error {
	if len(sessionIDs) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO backchannel_logouts (session_id, user_id, client_id, created_at, next_attempt_at)
		SELECT DISTINCT g.session_id, g.user_id, g.client_id, $2::timestamptz, $2::timestamptz
		FROM grants g JOIN clients c ON c.id = g.client_id
		WHERE g.session_id = ANY($1) AND g.session_id <> ''
		  AND COALESCE(c.metadata->>'backchannel_logout_uri', '') <> ''
		ON CONFLICT (session_id, client_id) DO NOTHING`, sessionIDs, now)
	if err != nil {
		return fmt.Errorf("queue back-channel logouts: %w", err)
	}
	return nil
}

// ClaimBackchannelLogouts claims due rows. FOR UPDATE SKIP LOCKED lets
// concurrent claimants on many instances each take different rows instead
// of queueing behind one another; the outer UPDATE then takes the lease.
func (db *DB) ClaimBackchannelLogouts(ctx context.Context, now, leaseUntil time.Time, limit int) ([]storage.BackchannelLogout, error) {
	rows, err := db.pool.Query(ctx, `
		UPDATE backchannel_logouts SET attempts = attempts + 1, next_attempt_at = $2
		WHERE id IN (
			SELECT id FROM backchannel_logouts
			WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1
			ORDER BY next_attempt_at, id
			LIMIT $3
			FOR UPDATE SKIP LOCKED)
		RETURNING `+backchannelColumns, now, leaseUntil, limit)
	if err != nil {
		return nil, fmt.Errorf("claim back-channel logouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.BackchannelLogout, error) { return scanBackchannelLogout(r) })
	if err != nil {
		return nil, fmt.Errorf("claim back-channel logouts: %w", err)
	}
	return out, nil
}

// BackchannelLogoutDelivered records a delivery by the current claim.
func (db *DB) BackchannelLogoutDelivered(ctx context.Context, id int64, attempt int, now time.Time) error {
	return db.finishBackchannelLogout(ctx, "back-channel logout delivered", `
		UPDATE backchannel_logouts SET delivered_at = $3, last_error = ''
		WHERE id = $1 AND attempts = $2 AND delivered_at IS NULL AND failed_at IS NULL`,
		id, attempt, now)
}

// RetryBackchannelLogout records a failed attempt by the current claim.
func (db *DB) RetryBackchannelLogout(ctx context.Context, id int64, attempt int, next time.Time, lastErr string) error {
	return db.finishBackchannelLogout(ctx, "retry back-channel logout", `
		UPDATE backchannel_logouts SET next_attempt_at = $3, last_error = $4
		WHERE id = $1 AND attempts = $2 AND delivered_at IS NULL AND failed_at IS NULL`,
		id, attempt, next, lastErr)
}

// BackchannelLogoutFailed gives up on a row, by the current claim.
func (db *DB) BackchannelLogoutFailed(ctx context.Context, id int64, attempt int, now time.Time, lastErr string) error {
	return db.finishBackchannelLogout(ctx, "back-channel logout failed", `
		UPDATE backchannel_logouts SET failed_at = $3, last_error = $4
		WHERE id = $1 AND attempts = $2 AND delivered_at IS NULL AND failed_at IS NULL`,
		id, attempt, now, lastErr)
}

// finishBackchannelLogout runs an update guarded by the claim and tells a
// missing row (ErrNotFound) from one that moved on (ErrConflict).
func (db *DB) finishBackchannelLogout(ctx context.Context, what, query string, args ...any) error {
	tag, err := db.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var exists bool
	if err := db.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM backchannel_logouts WHERE id = $1)`, args[0]).Scan(&exists); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !exists {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("%s: finished or claimed again: %w", what, storage.ErrConflict)
}

// ListBackchannelLogouts returns every row, ordered by id.
func (db *DB) ListBackchannelLogouts(ctx context.Context) ([]storage.BackchannelLogout, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+backchannelColumns+` FROM backchannel_logouts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list back-channel logouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.BackchannelLogout, error) { return scanBackchannelLogout(r) })
	if err != nil {
		return nil, fmt.Errorf("list back-channel logouts: %w", err)
	}
	return out, nil
}
