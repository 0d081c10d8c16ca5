package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const sessionColumns = `id, secret_hash, user_id, auth_time, amr, ip, user_agent,
	created_at, last_seen_at, expires_at, ended_at`

func scanSession(row scanner) (storage.Session, error) {
	var (
		s                                          storage.Session
		authTime, createdAt, lastSeenAt, expiresAt int64
		endedAt                                    sql.NullInt64
	)
	err := row.Scan(&s.ID, &s.SecretHash, &s.UserID, &authTime, list(&s.AMR), &s.IP, &s.UserAgent,
		&createdAt, &lastSeenAt, &expiresAt, &endedAt)
	if err != nil {
		return storage.Session{}, err
	}
	s.AuthTime = fromMicros(authTime)
	s.CreatedAt = fromMicros(createdAt)
	s.LastSeenAt = fromMicros(lastSeenAt)
	s.ExpiresAt = fromMicros(expiresAt)
	s.EndedAt = fromNullMicros(endedAt)
	return s, nil
}

// CreateSession inserts s.
func (db *DB) CreateSession(ctx context.Context, s storage.Session) error {
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO sessions (`+sessionColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.SecretHash, s.UserID, micros(s.AuthTime), jsonList(s.AMR), s.IP, s.UserAgent,
		micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.ExpiresAt), nullMicros(s.EndedAt))
	if err != nil {
		return fmt.Errorf("create session: %w", mapErr(err))
	}
	return nil
}

// GetSessionBySecret returns the session whose cookie secret hashes to
// secretHash, ended or not.
func (db *DB) GetSessionBySecret(ctx context.Context, secretHash []byte) (storage.Session, error) {
	s, err := scanSession(db.db.QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE secret_hash = ?`, secretHash))
	if err != nil {
		return storage.Session{}, fmt.Errorf("get session by secret: %w", mapErr(err))
	}
	return s, nil
}

// GetSession returns the session with this public ID, ended or not.
func (db *DB) GetSession(ctx context.Context, id string) (storage.Session, error) {
	s, err := scanSession(db.db.QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id))
	if err != nil {
		return storage.Session{}, fmt.Errorf("get session: %w", mapErr(err))
	}
	return s, nil
}

// TouchSession records activity on a session that has not ended.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	res, err := db.db.ExecContext(ctx,
		`UPDATE sessions SET last_seen_at = ? WHERE id = ? AND ended_at IS NULL`, micros(now), id)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("touch session: %w", err)
	} else if n == 1 {
		return nil
	}
	// Nothing updated: tell a missing session from an ended one.
	var exists bool
	if err := db.db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?)`, id).Scan(&exists); err != nil {
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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
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
func endSession(ctx context.Context, tx *sql.Tx, id string, now time.Time) error {
	res, err := tx.ExecContext(ctx,
		`UPDATE sessions SET ended_at = COALESCE(ended_at, ?) WHERE id = ?`, micros(now), id)
	if err != nil {
		return err
	}
	if err := wantOneRow(res); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE grants SET revoked_at = ?
		WHERE session_id = ? AND session_id <> '' AND offline = 0 AND revoked_at IS NULL`, micros(now), id)
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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL RETURNING id`, micros(now), userID)
		if err != nil {
			return err
		}
		ended, err := collect(rows, func(r scanner) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil {
			return err
		}
		n = int64(len(ended))
		_, err = tx.ExecContext(ctx, `
			UPDATE grants SET revoked_at = ?1
			WHERE user_id = ?2
			  AND session_id IN (SELECT id FROM sessions WHERE user_id = ?2)
			  AND offline = 0 AND revoked_at IS NULL`, micros(now), userID)
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
// The transaction is BEGIN IMMEDIATE (see Open): it holds the database
// write lock from its first statement, so concurrent sign-ins, in this
// process or another, take turns and each counts what the previous one
// left.
func (db *DB) CreateSessionWithLimit(ctx context.Context, s storage.Session, l storage.SessionLimit, now time.Time) ([]string, error) {
	var evicted []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, s.UserID).Scan(&one); err != nil {
			return fmt.Errorf("find user: %w", mapErr(err))
		}
		if l.Replaces != "" {
			if err := endSession(ctx, tx, l.Replaces, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("end replaced session: %w", err)
			}
		}
		if l.Max > 0 {
			rows, err := tx.QueryContext(ctx, `
				SELECT id FROM sessions
				WHERE user_id = ? AND ended_at IS NULL AND expires_at > ? AND last_seen_at >= ?
				ORDER BY last_seen_at, created_at, id`, s.UserID, micros(now), micros(l.IdleCutoff))
			if err != nil {
				return fmt.Errorf("count sessions: %w", err)
			}
			live, err := collect(rows, func(r scanner) (string, error) {
				var id string
				return id, r.Scan(&id)
			})
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
		_, err := tx.ExecContext(ctx, `
			INSERT INTO sessions (`+sessionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.SecretHash, s.UserID, micros(s.AuthTime), jsonList(s.AMR), s.IP, s.UserAgent,
			micros(s.CreatedAt), micros(s.LastSeenAt), micros(s.ExpiresAt), nullMicros(s.EndedAt))
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
	rows, err := db.db.QueryContext(ctx, `
		SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND ended_at IS NULL AND expires_at > ?
		ORDER BY last_seen_at DESC, id`, userID, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list user sessions: %w", err)
	}
	out, err := collect(rows, scanSession)
	if err != nil {
		return nil, fmt.Errorf("list user sessions: %w", err)
	}
	return out, nil
}

// ListLiveSessions returns every user's sessions that have not ended or
// expired.
func (db *DB) ListLiveSessions(ctx context.Context, now time.Time) ([]storage.Session, error) {
	rows, err := db.db.QueryContext(ctx, `
		SELECT `+sessionColumns+` FROM sessions
		WHERE ended_at IS NULL AND expires_at > ?
		ORDER BY user_id, last_seen_at DESC, id`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("list live sessions: %w", err)
	}
	out, err := collect(rows, scanSession)
	if err != nil {
		return nil, fmt.Errorf("list live sessions: %w", err)
	}
	return out, nil
}

// SessionActivity counts the sessions active since since, overall and per
// client.
func (db *DB) SessionActivity(ctx context.Context, since, now time.Time) (storage.SessionActivity, error) {
	var a storage.SessionActivity
	err := db.db.QueryRowContext(ctx, `
		SELECT count(*), count(DISTINCT user_id) FROM sessions
		WHERE ended_at IS NULL AND expires_at > ?2 AND last_seen_at >= ?1`, micros(since), micros(now)).
		Scan(&a.Sessions, &a.Users)
	if err != nil {
		return storage.SessionActivity{}, fmt.Errorf("session activity: %w", err)
	}
	rows, err := db.db.QueryContext(ctx, `
		SELECT g.client_id, count(DISTINCT s.id), count(DISTINCT s.user_id)
		FROM sessions s JOIN grants g ON g.session_id = s.id AND g.session_id <> ''
		WHERE s.ended_at IS NULL AND s.expires_at > ?2 AND s.last_seen_at >= ?1
		GROUP BY g.client_id ORDER BY g.client_id`, micros(since), micros(now))
	if err != nil {
		return storage.SessionActivity{}, fmt.Errorf("session activity per client: %w", err)
	}
	a.PerClient, err = collect(rows, func(r scanner) (storage.ClientActivity, error) {
		var c storage.ClientActivity
		err := r.Scan(&c.ClientID, &c.Sessions, &c.Users)
		return c, err
	})
	if err != nil {
		return storage.SessionActivity{}, fmt.Errorf("session activity per client: %w", err)
	}
	return a, nil
}
