package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const sessionColumns = `id, secret_hash, user_id, auth_time, amr, ip, user_agent,
	created_at, last_seen_at, expires_at, ended_at`

func scanSession(row scanner) (storage.Session, error) {
	var s storage.Session
	err := row.Scan(&s.ID, &s.SecretHash, &s.UserID, &s.AuthTime, &s.AMR, &s.IP, &s.UserAgent,
		&s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt, &s.EndedAt)
	if err != nil {
		return storage.Session{}, err
	}
	s.AuthTime = s.AuthTime.UTC()
	s.CreatedAt = s.CreatedAt.UTC()
	s.LastSeenAt = s.LastSeenAt.UTC()
	s.ExpiresAt = s.ExpiresAt.UTC()
	s.EndedAt = utcPtr(s.EndedAt)
	return s, nil
}

// CreateSession inserts s.
func (db *DB) CreateSession(ctx context.Context, s storage.Session) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		s.ID, s.SecretHash, s.UserID, s.AuthTime, strs(s.AMR), s.IP, s.UserAgent,
		s.CreatedAt, s.LastSeenAt, s.ExpiresAt, s.EndedAt)
	if err != nil {
		return fmt.Errorf("create session: %w", mapErr(err))
	}
	return nil
}

// GetSessionBySecret returns the session whose cookie secret hashes to
// secretHash, ended or not.
func (db *DB) GetSessionBySecret(ctx context.Context, secretHash []byte) (storage.Session, error) {
	s, err := scanSession(db.pool.QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE secret_hash = $1`, secretHash))
	if err != nil {
		return storage.Session{}, fmt.Errorf("get session by secret: %w", mapErr(err))
	}
	return s, nil
}

// GetSession returns the session with this public ID, ended or not.
func (db *DB) GetSession(ctx context.Context, id string) (storage.Session, error) {
	s, err := scanSession(db.pool.QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	if err != nil {
		return storage.Session{}, fmt.Errorf("get session: %w", mapErr(err))
	}
	return s, nil
}

// TouchSession records activity on a session that has not ended.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	tag, err := db.pool.Exec(ctx,
		`UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL`, id, now)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// Nothing updated: tell a missing session from an ended one.
	var exists bool
	if err := db.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if !exists {
		return fmt.Errorf("touch session: %w", storage.ErrNotFound)
	}
	return fmt.Errorf("touch session: session has ended: %w", storage.ErrConflict)
}

// EndSession sets EndedAt = now unless the session has already ended (the
// first end time stays), and revokes the grants bound to it, in one
// transaction. The grants are revoked even when the session had already
// ended: a code issued before the end may have been redeemed since.
// The query's test that session_id is not empty is redundant (id names an
// existing session), but it lets the partial index grants_session_id_idx
// serve the query.
func (db *DB) EndSession(ctx context.Context, id string, now time.Time) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			`UPDATE sessions SET ended_at = COALESCE(ended_at, $2) WHERE id = $1`, id, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		_, err = tx.Exec(ctx, `
			UPDATE grants SET revoked_at = $2
			WHERE session_id = $1 AND session_id <> '' AND NOT offline AND revoked_at IS NULL`, id, now)
		if err != nil {
			return err
		}
		return queueBackchannelLogouts(ctx, tx, []string{id}, now)
	})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// EndUserSessions ends every live session of the user and revokes the
// grants bound to any of the user's sessions, in one transaction. Those are
// the user's own grants: user_id lets grants_user_id_idx find them.
func (db *DB) EndUserSessions(ctx context.Context, userID string, now time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx,
			`UPDATE sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL RETURNING id`, userID, now)
		if err != nil {
			return err
		}
		ended, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		n = int64(len(ended))
		_, err = tx.Exec(ctx, `
			UPDATE grants SET revoked_at = $2
			WHERE user_id = $1
			  AND session_id IN (SELECT id FROM sessions WHERE user_id = $1)
			  AND NOT offline AND revoked_at IS NULL`, userID, now)
		if err != nil {
			return err
		}
		// Only the sessions ended now: the others were told when they
		// ended.
		return queueBackchannelLogouts(ctx, tx, ended, now)
	})
	if err != nil {
		return 0, fmt.Errorf("end user sessions: %w", err)
	}
	return n, nil
}
