package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const authRequestColumns = `id_hash, client_id, redirect_uri, scopes, state, nonce,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, ui_locales,
	session_id, login_at, created_at, expires_at`

func scanAuthRequest(row scanner) (storage.AuthRequest, error) {
	var (
		r      storage.AuthRequest
		maxAge *int64
	)
	err := row.Scan(&r.IDHash, &r.ClientID, &r.RedirectURI, &r.Scopes, &r.State, &r.Nonce,
		&r.CodeChallenge, &r.CodeChallengeMethod, &r.Prompt, &maxAge, &r.LoginHint, &r.UILocales,
		&r.SessionID, &r.LoginAt, &r.CreatedAt, &r.ExpiresAt)
	if err != nil {
		return storage.AuthRequest{}, err
	}
	if maxAge != nil {
		v := int(*maxAge)
		r.MaxAge = &v
	}
	r.LoginAt = utcPtr(r.LoginAt)
	r.CreatedAt = r.CreatedAt.UTC()
	r.ExpiresAt = r.ExpiresAt.UTC()
	return r, nil
}

// CreateAuthRequest inserts r.
func (db *DB) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		r.IDHash, r.ClientID, r.RedirectURI, strs(r.Scopes), r.State, r.Nonce,
		r.CodeChallenge, r.CodeChallengeMethod, strs(r.Prompt), r.MaxAge, r.LoginHint, r.UILocales,
		r.SessionID, r.LoginAt, r.CreatedAt, r.ExpiresAt)
	if err != nil {
		return fmt.Errorf("create auth request: %w", mapErr(err))
	}
	return nil
}

// GetAuthRequest returns the request if it has not expired at now.
func (db *DB) GetAuthRequest(ctx context.Context, idHash []byte, now time.Time) (storage.AuthRequest, error) {
	r, err := scanAuthRequest(db.pool.QueryRow(ctx, `
		SELECT `+authRequestColumns+` FROM auth_requests
		WHERE id_hash = $1 AND expires_at > $2`, idHash, now))
	if err != nil {
		return storage.AuthRequest{}, fmt.Errorf("get auth request: %w", mapErr(err))
	}
	return r, nil
}

// SetAuthRequestLogin records the sign-in that satisfied the request, if
// the request has not expired at loginAt.
func (db *DB) SetAuthRequestLogin(ctx context.Context, idHash []byte, sessionID string, loginAt time.Time) error {
	tag, err := db.pool.Exec(ctx, `
		UPDATE auth_requests SET session_id = $2, login_at = $3
		WHERE id_hash = $1 AND expires_at > $3`, idHash, sessionID, loginAt)
	if err != nil {
		return fmt.Errorf("set auth request login: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set auth request login: %w", storage.ErrNotFound)
	}
	return nil
}

// ConsumeAuthRequest deletes and returns the request in one statement: the
// row lock makes every concurrent caller but one find nothing to delete.
func (db *DB) ConsumeAuthRequest(ctx context.Context, idHash []byte, now time.Time) (storage.AuthRequest, error) {
	r, err := scanAuthRequest(db.pool.QueryRow(ctx, `
		DELETE FROM auth_requests
		WHERE id_hash = $1 AND expires_at > $2
		RETURNING `+authRequestColumns, idHash, now))
	if err != nil {
		return storage.AuthRequest{}, fmt.Errorf("consume auth request: %w", mapErr(err))
	}
	return r, nil
}
