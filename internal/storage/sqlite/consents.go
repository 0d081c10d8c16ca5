package sqlite

import (
	"context"
	"fmt"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// GetConsent returns the user's consent for the client.
func (db *DB) GetConsent(ctx context.Context, userID, clientID string) (storage.Consent, error) {
	var (
		c                    storage.Consent
		createdAt, updatedAt int64
	)
	err := db.db.QueryRowContext(ctx, `
		SELECT user_id, client_id, scopes, created_at, updated_at
		FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID).
		Scan(&c.UserID, &c.ClientID, list(&c.Scopes), &createdAt, &updatedAt)
	if err != nil {
		return storage.Consent{}, fmt.Errorf("get consent: %w", mapErr(err))
	}
	c.CreatedAt = fromMicros(createdAt)
	c.UpdatedAt = fromMicros(updatedAt)
	return c, nil
}

// PutConsent inserts or replaces the consent for (UserID, ClientID),
// keeping the original CreatedAt on replace.
func (db *DB) PutConsent(ctx context.Context, c storage.Consent) error {
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE
		SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, jsonList(c.Scopes), micros(c.CreatedAt), micros(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put consent: %w", mapErr(err))
	}
	return nil
}
