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

// RedeemAuthCode marks the code used and creates its grant in one
// transaction. The conditional UPDATE is the arbiter: concurrent callers
// queue on the row lock, and once the winner commits the others re-check
// used_at IS NULL, match nothing, and get ErrConflict.
func (db *DB) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time, g storage.Grant) (storage.AuthCode, error) {
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
		return insertGrant(ctx, tx, g)
	})
	if err != nil {
		return storage.AuthCode{}, fmt.Errorf("redeem auth code: %w", mapErr(err))
	}
	return code, nil
}

const grantColumns = `id, user_id, client_id, session_id, scopes, created_at, revoked_at`

func insertGrant(ctx context.Context, tx pgx.Tx, g storage.Grant) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO grants (`+grantColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		g.ID, g.UserID, g.ClientID, g.SessionID, strs(g.Scopes), g.CreatedAt, g.RevokedAt)
	if err != nil {
		return fmt.Errorf("insert grant: %w", err)
	}
	return nil
}

// GetGrant returns the grant, revoked or not.
func (db *DB) GetGrant(ctx context.Context, id string) (storage.Grant, error) {
	var g storage.Grant
	err := db.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id).
		Scan(&g.ID, &g.UserID, &g.ClientID, &g.SessionID, &g.Scopes, &g.CreatedAt, &g.RevokedAt)
	if err != nil {
		return storage.Grant{}, fmt.Errorf("get grant: %w", mapErr(err))
	}
	g.CreatedAt = g.CreatedAt.UTC()
	g.RevokedAt = utcPtr(g.RevokedAt)
	return g, nil
}

// RevokeGrant sets RevokedAt = now unless it is already set.
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
