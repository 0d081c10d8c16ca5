package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// GetConsent returns the user's consent for the client.
func (db *DB) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	var c storage.Consent
	err := db.pool.QueryRow(ctx, `
		SELECT user_id, client_id, scopes, created_at, updated_at
		FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID).
		Scan(&c.UserID, &c.ClientID, &c.Scopes, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return storage.Consent{}, fmt.Errorf("get consent: %w", mapErr(err))
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	return c, nil
}

// PutConsent inserts or replaces the consent for (UserID, ClientID),
// keeping the original CreatedAt on replace. One upsert statement, so two
// concurrent puts cannot both try to insert.
func (db *DB) PutConsent(ctx context.Context, c storage.Consent) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE
		SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, strs(c.Scopes), c.CreatedAt, c.UpdatedAt)
	if err != nil {
		return fmt.Errorf("put consent: %w", mapErr(err))
	}
	return nil
}

// ListUserConsents returns the user's consents ordered by client.
func (db *DB) ListUserConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT user_id, client_id, scopes, created_at, updated_at
		FROM consents WHERE user_id = $1 ORDER BY client_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list user consents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Consent, error) {
		var c storage.Consent
		if err := r.Scan(&c.UserID, &c.ClientID, &c.Scopes, &c.CreatedAt, &c.UpdatedAt); err != nil {
			return c, err
		}
		c.CreatedAt = c.CreatedAt.UTC()
		c.UpdatedAt = c.UpdatedAt.UTC()
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list user consents: %w", err)
	}
	return out, nil
}

// DeleteConsent removes the user's consent for the client.
func (db *DB) DeleteConsent(ctx context.Context, userID, clientID string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	if err != nil {
		return fmt.Errorf("delete consent: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete consent: %w", storage.ErrNotFound)
	}
	return nil
}
