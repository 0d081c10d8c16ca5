package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const authCodeColumns = `code_hash, client_id, user_id, session_id, grant_id, redirect_uri,
	scopes, nonce, code_challenge, code_challenge_method, auth_time, amr,
	created_at, expires_at, used_at`

func scanAuthCode(row scanner) (storage.AuthCode, error) {
	var c storage.AuthCode
	err := row.Scan(&c.CodeHash, &c.ClientID, &c.UserID, &c.SessionID, &c.GrantID, &c.RedirectURI,
		&c.Scopes, &c.Nonce, &c.CodeChallenge, &c.CodeChallengeMethod, &c.AuthTime, &c.AMR,
		&c.CreatedAt, &c.ExpiresAt, &c.UsedAt)
	if err != nil {
		return storage.AuthCode{}, err
	}
	c.AuthTime = c.AuthTime.UTC()
	c.CreatedAt = c.CreatedAt.UTC()
	c.ExpiresAt = c.ExpiresAt.UTC()
	c.UsedAt = utcPtr(c.UsedAt)
	return c, nil
}

// CreateAuthCode inserts c.
func (db *DB) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO auth_codes (`+authCodeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.CodeHash, c.ClientID, c.UserID, c.SessionID, c.GrantID, c.RedirectURI,
		strs(c.Scopes), c.Nonce, c.CodeChallenge, c.CodeChallengeMethod, c.AuthTime, strs(c.AMR),
		c.CreatedAt, c.ExpiresAt, c.UsedAt)
	if err != nil {
		return fmt.Errorf("create auth code: %w", mapErr(err))
	}
	return nil
}

// GetAuthCode returns the code, used or not, expired or not.
func (db *DB) GetAuthCode(ctx context.Context, codeHash []byte) (storage.AuthCode, error) {
	c, err := scanAuthCode(db.pool.QueryRow(ctx,
		`SELECT `+authCodeColumns+` FROM auth_codes WHERE code_hash = $1`, codeHash))
	if err != nil {
		return storage.AuthCode{}, fmt.Errorf("get auth code: %w", mapErr(err))
	}
	return c, nil
}

// RedeemAuthCode marks the code used and creates its grant and issued
// tokens in one transaction. The conditional UPDATE is the arbiter:
// concurrent callers queue on the row lock, and once the winner commits the
// others re-check used_at IS NULL, match nothing, and get ErrConflict.
func (db *DB) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time, g storage.Grant, issued storage.IssuedTokens) (storage.AuthCode, error) {
	if err := checkIssued(g.ID, issued.RefreshToken, issued.AccessToken); err != nil {
		return storage.AuthCode{}, fmt.Errorf("redeem auth code: %w", err)
	}
	var code storage.AuthCode
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var err error
		code, err = scanAuthCode(tx.QueryRow(ctx, `
			UPDATE auth_codes SET used_at = $2
			WHERE code_hash = $1 AND used_at IS NULL
			RETURNING `+authCodeColumns, codeHash, now))
		if errors.Is(err, pgx.ErrNoRows) {
			var exists bool
			if err := tx.QueryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM auth_codes WHERE code_hash = $1)`, codeHash).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return storage.ErrNotFound
			}
			return fmt.Errorf("code already used: %w", storage.ErrConflict)
		}
		if err != nil {
			return err
		}
		if g.ID != code.GrantID {
			// A caller bug, not a race: refuse, and the rollback leaves
			// the code unused.
			return fmt.Errorf("grant id %q is not the code's grant id %q", g.ID, code.GrantID)
		}
		if err := insertGrant(ctx, tx, g); err != nil {
			return err
		}
		return insertIssued(ctx, tx, issued.RefreshToken, issued.AccessToken)
	})
	if err != nil {
		return storage.AuthCode{}, fmt.Errorf("redeem auth code: %w", mapErr(err))
	}
	return code, nil
}

// checkIssued refuses tokens that do not belong to the grant they are
// issued under: a caller bug that would put a token in the wrong family.
func checkIssued(grantID string, rt *storage.RefreshToken, at *storage.AccessToken) error {
	if rt != nil && rt.GrantID != grantID {
		return fmt.Errorf("refresh token's grant id %q is not %q", rt.GrantID, grantID)
	}
	if at != nil && at.GrantID != grantID {
		return fmt.Errorf("access token's grant id %q is not %q", at.GrantID, grantID)
	}
	return nil
}

// insertIssued inserts whichever of the tokens are not nil.
func insertIssued(ctx context.Context, tx pgx.Tx, rt *storage.RefreshToken, at *storage.AccessToken) error {
	if rt != nil {
		if err := insertRefreshToken(ctx, tx, *rt); err != nil {
			return err
		}
	}
	if at != nil {
		if err := insertAccessToken(ctx, tx, *at); err != nil {
			return err
		}
	}
	return nil
}

const grantColumns = `id, user_id, client_id, session_id, offline, scopes, created_at, revoked_at`

func insertGrant(ctx context.Context, tx pgx.Tx, g storage.Grant) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO grants (`+grantColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		g.ID, g.UserID, g.ClientID, g.SessionID, g.Offline, strs(g.Scopes), g.CreatedAt, g.RevokedAt)
	if err != nil {
		return fmt.Errorf("insert grant: %w", err)
	}
	return nil
}

// GetGrant returns the grant, revoked or not.
func (db *DB) GetGrant(ctx context.Context, id string) (storage.Grant, error) {
	var g storage.Grant
	err := db.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id).
		Scan(&g.ID, &g.UserID, &g.ClientID, &g.SessionID, &g.Offline, &g.Scopes, &g.CreatedAt, &g.RevokedAt)
	if err != nil {
		return storage.Grant{}, fmt.Errorf("get grant: %w", mapErr(err))
	}
	g.CreatedAt = g.CreatedAt.UTC()
	g.RevokedAt = utcPtr(g.RevokedAt)
	return g, nil
}

// RevokeGrant sets RevokedAt = now unless it is already set. The UPDATE
// takes the grant's row lock (FOR NO KEY UPDATE), which conflicts with the
// SELECT ... FOR UPDATE in RotateRefreshToken: a revocation waits for a
// rotation in progress, and a rotation that starts after the revocation
// waits for it and then sees the grant revoked.
func (db *DB) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	tag, err := db.pool.Exec(ctx,
		`UPDATE grants SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, now)
	if err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke grant: %w", storage.ErrNotFound)
	}
	return nil
}

// RevokeUserGrants revokes every unrevoked grant of the user.
func (db *DB) RevokeUserGrants(ctx context.Context, userID string, now time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx,
		`UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, now)
	if err != nil {
		return 0, fmt.Errorf("revoke user grants: %w", err)
	}
	return tag.RowsAffected(), nil
}

// ListUserGrants returns the user's unrevoked grants, grouped by client.
func (db *DB) ListUserGrants(ctx context.Context, userID string) ([]storage.Grant, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT `+grantColumns+` FROM grants
		WHERE user_id = $1 AND revoked_at IS NULL
		ORDER BY client_id, created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list user grants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Grant, error) {
		var g storage.Grant
		if err := r.Scan(&g.ID, &g.UserID, &g.ClientID, &g.SessionID, &g.Offline, &g.Scopes, &g.CreatedAt, &g.RevokedAt); err != nil {
			return g, err
		}
		g.CreatedAt = g.CreatedAt.UTC()
		g.RevokedAt = utcPtr(g.RevokedAt)
		return g, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list user grants: %w", err)
	}
	return out, nil
}

// RevokeUserClientGrants revokes the user's unrevoked grants to the
// client. Each UPDATE takes the grant's row lock, as RevokeGrant does.
func (db *DB) RevokeUserClientGrants(ctx context.Context, userID, clientID string, now time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `
		UPDATE grants SET revoked_at = $3
		WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL`, userID, clientID, now)
	if err != nil {
		return 0, fmt.Errorf("revoke user client grants: %w", err)
	}
	return tag.RowsAffected(), nil
}
