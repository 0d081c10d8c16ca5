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

// ListUserConsents returns the user's consents ordered by client.
func (db *DB) ListUserConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	rows, err := db.db.QueryContext(ctx, `
		SELECT user_id, client_id, scopes, created_at, updated_at
		FROM consents WHERE user_id = ? ORDER BY client_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list user consents: %w", err)
	}
	out, err := collect(rows, func(r scanner) (storage.Consent, error) {
		var (
			c                    storage.Consent
			createdAt, updatedAt int64
		)
		if err := r.Scan(&c.UserID, &c.ClientID, list(&c.Scopes), &createdAt, &updatedAt); err != nil {
			return c, err
		}
		c.CreatedAt = fromMicros(createdAt)
		c.UpdatedAt = fromMicros(updatedAt)
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list user consents: %w", err)
	}
	return out, nil
}

// DeleteConsent removes the user's consent for the client.
func (db *DB) DeleteConsent(ctx context.Context, userID, clientID string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
	if err != nil {
		return fmt.Errorf("delete consent: %w", err)
	}
	if err := wantOneRow(res); err != nil {
		return fmt.Errorf("delete consent: %w", err)
	}
	return nil
}
