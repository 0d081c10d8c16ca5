package postgres

import (
	"context"
	"errors"
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
		return endSession(ctx, tx, id, now)
	})
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// endSession is EndSession inside tx. It is the one way a single session
// ends (EndSession, and the evictions and replacement of
// CreateSessionWithLimit), so whatever must accompany the end of a session
// is added here once. ErrNotFound if there is no such session.
func endSession(ctx context.Context, tx pgx.Tx, id string, now time.Time) error {
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
	// Every way a session ends (logout, forced logout, eviction, a new
	// sign-in replacing it) comes through here, so every one of them
	// tells the apps that took part.
	return queueBackchannelLogouts(ctx, tx, []string{id}, now)
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

// CreateSessionWithLimit inserts s under the concurrent-session limit l.
// Locking the user's row first makes concurrent sign-ins of one user, on
// any number of instances, take turns: each counts the sessions the
// previous one left, so the limit cannot be overshot. Other users' sign-ins
// do not wait. FOR NO KEY UPDATE rather than FOR UPDATE: it conflicts with
// itself, which is all the turn-taking needs, but not with the FOR KEY
// SHARE locks that inserting the user's grants and codes takes for their
// foreign keys, so token requests of the same user are not held up.
func (db *DB) CreateSessionWithLimit(ctx context.Context, s storage.Session, l storage.SessionLimit, now time.Time) ([]string, error) {
	var evicted []string
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, s.UserID).Scan(&one); err != nil {
			return fmt.Errorf("lock user: %w", mapErr(err))
		}
		if l.Replaces != "" {
			if err := endSession(ctx, tx, l.Replaces, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("end replaced session: %w", err)
			}
		}
		if l.Max > 0 {
			rows, err := tx.Query(ctx, `
				SELECT id FROM sessions
				WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at >= $3
				ORDER BY last_seen_at, created_at, id`, s.UserID, now, l.IdleCutoff)
			if err != nil {
				return fmt.Errorf("count sessions: %w", err)
			}
			live, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("count sessions: %w", err)
			}
			if len(live) >= l.Max {
				if l.Action != storage.SessionLimitEvictOldest {
					return storage.ErrSessionLimit
				}
				for _, id := range live[:len(live)-l.Max+1] {
					if err := endSession(ctx, tx, id, now); err != nil {
						return fmt.Errorf("evict session %s: %w", id, err)
					}
					evicted = append(evicted, id)
				}
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO sessions (`+sessionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			s.ID, s.SecretHash, s.UserID, s.AuthTime, strs(s.AMR), s.IP, s.UserAgent,
			s.CreatedAt, s.LastSeenAt, s.ExpiresAt, s.EndedAt)
		return mapErr(err)
	})
	if err != nil {
		return nil, fmt.Errorf("create session with limit: %w", err)
	}
	return evicted, nil
}

// ListUserSessions returns the user's sessions that have not ended or
// expired, most recently active first.
func (db *DB) ListUserSessions(ctx context.Context, userID string, now time.Time) ([]storage.Session, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2
		ORDER BY last_seen_at DESC, id`, userID, now)
	if err != nil {
		return nil, fmt.Errorf("list user sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Session, error) { return scanSession(r) })
	if err != nil {
		return nil, fmt.Errorf("list user sessions: %w", err)
	}
	return out, nil
}

// ListLiveSessions returns every user's sessions that have not ended or
// expired.
func (db *DB) ListLiveSessions(ctx context.Context, now time.Time) ([]storage.Session, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT `+sessionColumns+` FROM sessions
		WHERE ended_at IS NULL AND expires_at > $1
		ORDER BY user_id, last_seen_at DESC, id`, now)
	if err != nil {
		return nil, fmt.Errorf("list live sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Session, error) { return scanSession(r) })
	if err != nil {
		return nil, fmt.Errorf("list live sessions: %w", err)
	}
	return out, nil
}

// SessionActivity counts the sessions active since since, overall and per
// client.
func (db *DB) SessionActivity(ctx context.Context, since, now time.Time) (storage.SessionActivity, error) {
	var a storage.SessionActivity
	err := db.pool.QueryRow(ctx, `
		SELECT count(*), count(DISTINCT user_id) FROM sessions
		WHERE ended_at IS NULL AND expires_at > $2 AND last_seen_at >= $1`, since, now).
		Scan(&a.Sessions, &a.Users)
	if err != nil {
		return storage.SessionActivity{}, fmt.Errorf("session activity: %w", err)
	}
	rows, err := db.pool.Query(ctx, `
		SELECT g.client_id, count(DISTINCT s.id), count(DISTINCT s.user_id)
		FROM sessions s JOIN grants g ON g.session_id = s.id AND g.session_id <> ''
		WHERE s.ended_at IS NULL AND s.expires_at > $2 AND s.last_seen_at >= $1
		GROUP BY g.client_id ORDER BY g.client_id`, since, now)
	if err != nil {
		return storage.SessionActivity{}, fmt.Errorf("session activity per client: %w", err)
	}
	a.PerClient, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.ClientActivity, error) {
		var c storage.ClientActivity
		err := r.Scan(&c.ClientID, &c.Sessions, &c.Users)
		return c, err
	})
	if err != nil {
		return storage.SessionActivity{}, fmt.Errorf("session activity per client: %w", err)
	}
	return a, nil
}
