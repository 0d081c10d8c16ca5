package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const authCodeColumns = `code_hash, client_id, user_id, session_id, grant_id, redirect_uri,
	scopes, nonce, code_challenge, code_challenge_method, auth_time, amr,
	created_at, expires_at, used_at`

func scanAuthCode(row scanner) (storage.AuthCode, error) {
	var (
		c                              storage.AuthCode
		authTime, createdAt, expiresAt int64
		usedAt                         sql.NullInt64
	)
	err := row.Scan(&c.CodeHash, &c.ClientID, &c.UserID, &c.SessionID, &c.GrantID, &c.RedirectURI,
		list(&c.Scopes), &c.Nonce, &c.CodeChallenge, &c.CodeChallengeMethod, &authTime, list(&c.AMR),
		&createdAt, &expiresAt, &usedAt)
	if err != nil {
		return storage.AuthCode{}, err
	}
	c.AuthTime = fromMicros(authTime)
	c.CreatedAt = fromMicros(createdAt)
	c.ExpiresAt = fromMicros(expiresAt)
	c.UsedAt = fromNullMicros(usedAt)
	return c, nil
}

// CreateAuthCode inserts c.
func (db *DB) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO auth_codes (`+authCodeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.CodeHash, c.ClientID, c.UserID, c.SessionID, c.GrantID, c.RedirectURI,
		jsonList(c.Scopes), c.Nonce, c.CodeChallenge, c.CodeChallengeMethod, micros(c.AuthTime), jsonList(c.AMR),
		micros(c.CreatedAt), micros(c.ExpiresAt), nullMicros(c.UsedAt))
	if err != nil {
		return fmt.Errorf("create auth code: %w", mapErr(err))
	}
	return nil
}

// GetAuthCode returns the code, used or not, expired or not.
func (db *DB) GetAuthCode(ctx context.Context, codeHash []byte) (storage.AuthCode, error) {
	c, err := scanAuthCode(db.db.QueryRowContext(ctx,
		`SELECT `+authCodeColumns+` FROM auth_codes WHERE code_hash = ?`, codeHash))
	if err != nil {
		return storage.AuthCode{}, fmt.Errorf("get auth code: %w", mapErr(err))
	}
	return c, nil
}

// RedeemAuthCode marks the code used and creates its grant and issued
// tokens in one transaction. The transaction begins IMMEDIATE, holding
// SQLite's single write lock, so concurrent callers run one after another
// and all but the first find used_at already set.
func (db *DB) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time, g storage.Grant, issued storage.IssuedTokens) (storage.AuthCode, error) {
	if err := checkIssued(g.ID, issued.RefreshToken, issued.AccessToken); err != nil {
		return storage.AuthCode{}, fmt.Errorf("redeem auth code: %w", err)
	}
	var code storage.AuthCode
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		code, err = scanAuthCode(tx.QueryRowContext(ctx, `
			UPDATE auth_codes SET used_at = ?
			WHERE code_hash = ? AND used_at IS NULL
			RETURNING `+authCodeColumns, micros(now), codeHash))
		if errors.Is(err, sql.ErrNoRows) {
			var exists bool
			if err := tx.QueryRowContext(ctx,
				`SELECT EXISTS (SELECT 1 FROM auth_codes WHERE code_hash = ?)`, codeHash).Scan(&exists); err != nil {
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
		_, err = tx.ExecContext(ctx, `
			INSERT INTO grants (`+grantColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.UserID, g.ClientID, g.SessionID, g.Offline, jsonList(g.Scopes), micros(g.CreatedAt), nullMicros(g.RevokedAt))
		if err != nil {
			return fmt.Errorf("insert grant: %w", err)
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
func insertIssued(ctx context.Context, tx *sql.Tx, rt *storage.RefreshToken, at *storage.AccessToken) error {
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

// GetGrant returns the grant, revoked or not.
func (db *DB) GetGrant(ctx context.Context, id string) (storage.Grant, error) {
	var (
		g         storage.Grant
		createdAt int64
		revokedAt sql.NullInt64
	)
	err := db.db.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id).
		Scan(&g.ID, &g.UserID, &g.ClientID, &g.SessionID, &g.Offline, list(&g.Scopes), &createdAt, &revokedAt)
	if err != nil {
		return storage.Grant{}, fmt.Errorf("get grant: %w", mapErr(err))
	}
	g.CreatedAt = fromMicros(createdAt)
	g.RevokedAt = fromNullMicros(revokedAt)
	return g, nil
}

// RevokeGrant sets RevokedAt = now unless it is already set. SQLite runs
// one write transaction at a time, so this and RotateRefreshToken
// serialize without a row lock.
func (db *DB) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	res, err := db.db.ExecContext(ctx,
		`UPDATE grants SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, micros(now), id)
	if err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	if err := wantOneRow(res); err != nil {
		return fmt.Errorf("revoke grant: %w", err)
	}
	return nil
}

// RevokeUserGrants revokes every unrevoked grant of the user.
func (db *DB) RevokeUserGrants(ctx context.Context, userID string, now time.Time) (int64, error) {
	res, err := db.db.ExecContext(ctx,
		`UPDATE grants SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, micros(now), userID)
	if err != nil {
		return 0, fmt.Errorf("revoke user grants: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke user grants: %w", err)
	}
	return n, nil
}

// ListUserGrants returns the user's unrevoked grants, grouped by client.
func (db *DB) ListUserGrants(ctx context.Context, userID string) ([]storage.Grant, error) {
	rows, err := db.db.QueryContext(ctx, `
		SELECT `+grantColumns+` FROM grants
		WHERE user_id = ? AND revoked_at IS NULL
		ORDER BY client_id, created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list user grants: %w", err)
	}
	out, err := collect(rows, func(r scanner) (storage.Grant, error) {
		var (
			g         storage.Grant
			createdAt int64
			revokedAt sql.NullInt64
		)
		if err := r.Scan(&g.ID, &g.UserID, &g.ClientID, &g.SessionID, &g.Offline, list(&g.Scopes), &createdAt, &revokedAt); err != nil {
			return g, err
		}
		g.CreatedAt = fromMicros(createdAt)
		g.RevokedAt = fromNullMicros(revokedAt)
		return g, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list user grants: %w", err)
	}
	return out, nil
}

// RevokeUserClientGrants revokes the user's unrevoked grants to the
// client.
func (db *DB) RevokeUserClientGrants(ctx context.Context, userID, clientID string, now time.Time) (int64, error) {
	res, err := db.db.ExecContext(ctx, `
		UPDATE grants SET revoked_at = ?
		WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL`, micros(now), userID, clientID)
	if err != nil {
		return 0, fmt.Errorf("revoke user client grants: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("revoke user client grants: %w", err)
	}
	return n, nil
}
