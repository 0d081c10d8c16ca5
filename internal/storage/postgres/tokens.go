package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const refreshTokenColumns = `token_hash, grant_id, client_id, user_id, scopes,
	created_at, expires_at, absolute_expires_at, used_at, successor_hash`

func scanRefreshToken(row scanner) (storage.RefreshToken, error) {
	var t storage.RefreshToken
	err := row.Scan(&t.TokenHash, &t.GrantID, &t.ClientID, &t.UserID, &t.Scopes,
		&t.CreatedAt, &t.ExpiresAt, &t.AbsoluteExpiresAt, &t.UsedAt, &t.SuccessorHash)
	if err != nil {
		return storage.RefreshToken{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt = t.ExpiresAt.UTC()
	t.AbsoluteExpiresAt = t.AbsoluteExpiresAt.UTC()
	t.UsedAt = utcPtr(t.UsedAt)
	return t, nil
}

func insertRefreshToken(ctx context.Context, tx pgx.Tx, t storage.RefreshToken) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		t.TokenHash, t.GrantID, t.ClientID, t.UserID, strs(t.Scopes),
		t.CreatedAt, t.ExpiresAt, t.AbsoluteExpiresAt, t.UsedAt, t.SuccessorHash)
	if err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

// GetRefreshToken returns the token, spent or not, expired or not.
func (db *DB) GetRefreshToken(ctx context.Context, tokenHash []byte) (storage.RefreshToken, error) {
	t, err := scanRefreshToken(db.pool.QueryRow(ctx,
		`SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return storage.RefreshToken{}, fmt.Errorf("get refresh token: %w", mapErr(err))
	}
	return t, nil
}

// RotateRefreshToken spends the token and inserts its successor (and at),
// in one transaction that first locks the grant row.
//
// The grant lock is what serializes rotation with revocation (RevokeGrant,
// RevokeUserGrants and EndSession all update the grant row, which conflicts
// with FOR UPDATE): whichever commits first, the other sees its result, so a
// successor is never added to a family after its revocation committed. It
// also queues concurrent rotations of one family, so the conditional UPDATE
// below finds the token already spent for all but the first.
func (db *DB) RotateRefreshToken(ctx context.Context, tokenHash []byte, now time.Time, next storage.RefreshToken, at *storage.AccessToken) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var (
			grantID string
			revoked bool
		)
		// In READ COMMITTED, a row locked by FOR UPDATE after waiting is
		// re-read at its newest committed version, so revoked_at here is
		// current, not as of the statement's snapshot.
		err := tx.QueryRow(ctx, `
			SELECT g.id, g.revoked_at IS NOT NULL
			FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id
			WHERE t.token_hash = $1
			FOR UPDATE OF g`, tokenHash).Scan(&grantID, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
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
		tag, err := tx.Exec(ctx, `
			UPDATE refresh_tokens SET used_at = $2, successor_hash = $3
			WHERE token_hash = $1 AND used_at IS NULL`, tokenHash, now, next.TokenHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $1)`, tokenHash).Scan(&exists); err != nil {
				return err
			}
			if !exists { // removed by DeleteExpired since the SELECT above
				return storage.ErrNotFound
			}
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
		t       storage.AccessToken
		grantID *string
	)
	err := row.Scan(&t.TokenHash, &grantID, &t.ClientID, &t.Subject, &t.Scopes, &t.Audience,
		&t.CreatedAt, &t.ExpiresAt, &t.RevokedAt)
	if err != nil {
		return storage.AccessToken{}, err
	}
	if grantID != nil {
		t.GrantID = *grantID
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt = t.ExpiresAt.UTC()
	t.RevokedAt = utcPtr(t.RevokedAt)
	return t, nil
}

// execer is what pgx.Tx and *pgxpool.Pool have in common for writes.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertAccessToken(ctx context.Context, e execer, t storage.AccessToken) error {
	// A machine token has no grant: NULL, which the foreign key allows,
	// rather than '', which it would not.
	var grantID *string
	if t.GrantID != "" {
		grantID = &t.GrantID
	}
	_, err := e.Exec(ctx, `
		INSERT INTO access_tokens (`+accessTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.TokenHash, grantID, t.ClientID, t.Subject, strs(t.Scopes), strs(t.Audience),
		t.CreatedAt, t.ExpiresAt, t.RevokedAt)
	if err != nil {
		return fmt.Errorf("insert access token: %w", err)
	}
	return nil
}

// CreateAccessToken inserts t.
func (db *DB) CreateAccessToken(ctx context.Context, t storage.AccessToken) error {
	if err := insertAccessToken(ctx, db.pool, t); err != nil {
		return fmt.Errorf("create access token: %w", mapErr(err))
	}
	return nil
}

// GetAccessToken returns the token, revoked or not, expired or not.
func (db *DB) GetAccessToken(ctx context.Context, tokenHash []byte) (storage.AccessToken, error) {
	t, err := scanAccessToken(db.pool.QueryRow(ctx,
		`SELECT `+accessTokenColumns+` FROM access_tokens WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return storage.AccessToken{}, fmt.Errorf("get access token: %w", mapErr(err))
	}
	return t, nil
}

// RevokeAccessToken sets RevokedAt = now unless it is already set.
func (db *DB) RevokeAccessToken(ctx context.Context, tokenHash []byte, now time.Time) error {
	tag, err := db.pool.Exec(ctx,
		`UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE token_hash = $1`, tokenHash, now)
	if err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke access token: %w", storage.ErrNotFound)
	}
	return nil
}

// RevokeJWT adds jti to the denylist. Revoking again keeps the later
// expiry, so a second call can never shorten how long the token is denied.
func (db *DB) RevokeJWT(ctx context.Context, jti string, expiresAt time.Time) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO revoked_jwts (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE
		SET expires_at = GREATEST(revoked_jwts.expires_at, excluded.expires_at)`, jti, expiresAt)
	if err != nil {
		return fmt.Errorf("revoke jwt: %w", err)
	}
	return nil
}

// IsJWTRevoked reports whether jti is on the denylist.
func (db *DB) IsJWTRevoked(ctx context.Context, jti string) (bool, error) {
	var revoked bool
	err := db.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM revoked_jwts WHERE jti = $1)`, jti).Scan(&revoked)
	if err != nil {
		return false, fmt.Errorf("is jwt revoked: %w", err)
	}
	return revoked, nil
}
