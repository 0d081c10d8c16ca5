package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const authRequestColumns = `id_hash, client_id, redirect_uri, scopes, state, nonce,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales,
	session_id, login_at, created_at, expires_at`

func scanAuthRequest(row scanner) (storage.AuthRequest, error) {
	var (
		r                    storage.AuthRequest
		maxAge, loginAt      sql.NullInt64
		createdAt, expiresAt int64
	)
	err := row.Scan(&r.IDHash, &r.ClientID, &r.RedirectURI, list(&r.Scopes), &r.State, &r.Nonce,
		&r.CodeChallenge, &r.CodeChallengeMethod, list(&r.Prompt), &maxAge, &r.LoginHint, &r.UILocales,
		&r.SessionID, &loginAt, &createdAt, &expiresAt)
	if err != nil {
		return storage.AuthRequest{}, err
	}
	if maxAge.Valid {
		v := int(maxAge.Int64)
		r.MaxAge = &v
	}
	r.LoginAt = fromNullMicros(loginAt)
	r.CreatedAt = fromMicros(createdAt)
	r.ExpiresAt = fromMicros(expiresAt)
	return r, nil
}

// CreateAuthRequest inserts r.
func (db *DB) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	var maxAge any
	if r.MaxAge != nil {
		maxAge = int64(*r.MaxAge)
	}
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.IDHash, r.ClientID, r.RedirectURI, jsonList(r.Scopes), r.State, r.Nonce,
		r.CodeChallenge, r.CodeChallengeMethod, jsonList(r.Prompt), maxAge, r.LoginHint, r.UILocales,
		r.SessionID, nullMicros(r.LoginAt), micros(r.CreatedAt), micros(r.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create auth request: %w", mapErr(err))
	}
	return nil
}

// GetAuthRequest returns the request if it has not expired at now.
func (db *DB) GetAuthRequest(ctx context.Context, idHash []byte, now time.Time) (storage.AuthRequest, error) {
	r, err := scanAuthRequest(db.db.QueryRowContext(ctx, `
		SELECT `+authRequestColumns+` FROM auth_requests
		WHERE id_hash = ? AND expires_at > ?`, idHash, micros(now)))
	if err != nil {
		return storage.AuthRequest{}, fmt.Errorf("get auth request: %w", mapErr(err))
	}
	return r, nil
}

// SetAuthRequestLogin records the sign-in that satisfied the request, if
// the request has not expired at loginAt.
func (db *DB) SetAuthRequestLogin(ctx context.Context, idHash []byte, sessionID string, loginAt time.Time) error {
	at := micros(loginAt)
	res, err := db.db.ExecContext(ctx, `
		UPDATE auth_requests SET session_id = ?, login_at = ?
		WHERE id_hash = ? AND expires_at > ?`, sessionID, at, idHash, at)
	if err != nil {
		return fmt.Errorf("set auth request login: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set auth request login: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("set auth request login: %w", storage.ErrNotFound)
	}
	return nil
}

// ConsumeAuthRequest deletes and returns the request in one statement.
// SQLite runs one writer at a time, so of concurrent callers only the first
// finds the row.
func (db *DB) ConsumeAuthRequest(ctx context.Context, idHash []byte, now time.Time) (storage.AuthRequest, error) {
	r, err := scanAuthRequest(db.db.QueryRowContext(ctx, `
		DELETE FROM auth_requests
		WHERE id_hash = ? AND expires_at > ?
		RETURNING `+authRequestColumns, idHash, micros(now)))
	if err != nil {
		return storage.AuthRequest{}, fmt.Errorf("consume auth request: %w", mapErr(err))
	}
	return r, nil
}
