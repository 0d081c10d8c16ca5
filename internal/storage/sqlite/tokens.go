package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const refreshTokenColumns = `token_hash, grant_id, client_id, user_id, scopes,
	created_at, expires_at, absolute_expires_at, used_at, successor_hash`

func scanRefreshToken(row scanner) (storage.RefreshToken, error) {
	var (
		t                                       storage.RefreshToken
		createdAt, expiresAt, absoluteExpiresAt int64
		usedAt                                  sql.NullInt64
	)
	err := row.Scan(&t.TokenHash, &t.GrantID, &t.ClientID, &t.UserID, list(&t.Scopes),
		&createdAt, &expiresAt, &absoluteExpiresAt, &usedAt, &t.SuccessorHash)
	if err != nil {
		return storage.RefreshToken{}, err
	}
	t.CreatedAt = fromMicros(createdAt)
	t.ExpiresAt = fromMicros(expiresAt)
	t.AbsoluteExpiresAt = fromMicros(absoluteExpiresAt)
	t.UsedAt = fromNullMicros(usedAt)
	return t, nil
}

func insertRefreshToken(ctx context.Context, tx *sql.Tx, t storage.RefreshToken) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.TokenHash, t.GrantID, t.ClientID, t.UserID, jsonList(t.Scopes),
		micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.AbsoluteExpiresAt), nullMicros(t.UsedAt), t.SuccessorHash)
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// GetRefreshToken returns the token, spent or not, expired or not.
func (db *DB) GetRefreshToken(ctx context.Context, tokenHash []byte) (storage.RefreshToken, error) {
	t, err := scanRefreshToken(db.db.QueryRowContext(ctx,
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return storage.RefreshToken{}, fmt.Errorf("get refresh token: %w", mapErr(err))
	}
	return t, nil
}

// RotateRefreshToken spends the token and inserts its successor (and at),
// in one transaction. The transaction begins IMMEDIATE, so it holds
// SQLite's single write lock from the start: concurrent rotations and
// revocations (which write the grant row) run strictly one after another,
// which is what the grant row lock achieves on Postgres.
func (db *DB) RotateRefreshToken(ctx context.Context, tokenHash []byte, now time.Time, next storage.RefreshToken, at *storage.AccessToken) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var (
			grantID string
			revoked bool
		)
		err := tx.QueryRowContext(ctx, `
			SELECT g.id, g.revoked_at IS NOT NULL
			FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id
			WHERE t.token_hash = ?`, tokenHash).Scan(&grantID, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return storage.ErrNotFound
		}
		if err != nil {
			return err
		}
		if revoked {
			return fmt.Errorf("grant %q is revoked: %w", grantID, storage.ErrRevoked)
		}
		if err := checkIssued(grantID, &next, at); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE refresh_tokens SET used_at = ?, successor_hash = ?
			WHERE token_hash = ? AND used_at IS NULL`, micros(now), next.TokenHash, tokenHash)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("refresh token already spent: %w", storage.ErrConflict)
		}
		return insertIssued(ctx, tx, &next, at)
	})
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", mapErr(err))
	}
	return nil
}

const accessTokenColumns = `token_hash, grant_id, client_id, subject, scopes, audience,
	created_at, expires_at, revoked_at`

func scanAccessToken(row scanner) (storage.AccessToken, error) {
	var (
		t                    storage.AccessToken
		grantID              sql.NullString
		createdAt, expiresAt int64
		revokedAt            sql.NullInt64
	)
	err := row.Scan(&t.TokenHash, &grantID, &t.ClientID, &t.Subject, list(&t.Scopes), list(&t.Audience),
		&createdAt, &expiresAt, &revokedAt)
	if err != nil {
		return storage.AccessToken{}, err
	}
	t.GrantID = grantID.String
	t.CreatedAt = fromMicros(createdAt)
	t.ExpiresAt = fromMicros(expiresAt)
	t.RevokedAt = fromNullMicros(revokedAt)
	return t, nil
}

// execer is what *sql.Tx and *sql.DB have in common for writes.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertAccessToken(ctx context.Context, e execer, t storage.AccessToken) error {
	// A machine token has no grant: NULL, which the foreign key allows,
	// rather than '', which it would not.
	var grantID any
	if t.GrantID != "" {
		grantID = t.GrantID
	}
	_, err := e.ExecContext(ctx, `
		INSERT INTO access_tokens (`+accessTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.TokenHash, grantID, t.ClientID, t.Subject, jsonList(t.Scopes), jsonList(t.Audience),
		micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.RevokedAt))
	if err != nil {
		return fmt.Errorf("insert access token: %w", err)
	}
	return nil
}

// CreateAccessToken inserts t.
func (db *DB) CreateAccessToken(ctx context.Context, t storage.AccessToken) error {
	if err := insertAccessToken(ctx, db.db, t); err != nil {
		return fmt.Errorf("create access token: %w", mapErr(err))
	}
	return nil
}

// GetAccessToken returns the token, revoked or not, expired or not.
func (db *DB) GetAccessToken(ctx context.Context, tokenHash []byte) (storage.AccessToken, error) {
	t, err := scanAccessToken(db.db.QueryRowContext(ctx,
		`SELECT `+accessTokenColumns+` FROM access_tokens WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return storage.AccessToken{}, fmt.Errorf("get access token: %w", mapErr(err))
	}
	return t, nil
}

// RevokeAccessToken sets RevokedAt = now unless it is already set.
func (db *DB) RevokeAccessToken(ctx context.Context, tokenHash []byte, now time.Time) error {
	res, err := db.db.ExecContext(ctx,
		`UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE token_hash = ?`, micros(now), tokenHash)
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	if err := wantOneRow(res); err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	return nil
}

// RevokeJWT adds jti to the denylist. Revoking again keeps the later
// expiry, so a second call can never shorten how long the token is denied.
func (db *DB) RevokeJWT(ctx context.Context, jti string, expiresAt time.Time) error {
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO revoked_jwts (jti, expires_at) VALUES (?, ?)
		ON CONFLICT (jti) DO UPDATE
		SET expires_at = max(revoked_jwts.expires_at, excluded.expires_at)`, jti, micros(expiresAt))
	if err != nil {
		return fmt.Errorf("revoke jwt: %w", err)
	}
	return nil
}

// IsJWTRevoked reports whether jti is on the denylist.
func (db *DB) IsJWTRevoked(ctx context.Context, jti string) (bool, error) {
	var revoked bool
	err := db.db.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM revoked_jwts WHERE jti = ?)`, jti).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("is jwt revoked: %w", err)
	}
	return revoked, nil
}
