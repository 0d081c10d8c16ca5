package sqlite

import (
	"context"
	"database/sql"
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

const signingKeyColumns = `id, algorithm, state, private_key_encrypted, public_jwk,
	created_at, activated_at, retired_at`

// CreateSigningKey inserts k. The partial unique index on active keys turns
// a second active key for one algorithm into ErrAlreadyExists.
func (db *DB) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO signing_keys (`+signingKeyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, string(k.State), k.PrivateKeyEncrypted, k.PublicJWK,
		micros(k.CreatedAt), nullMicros(k.ActivatedAt), nullMicros(k.RetiredAt))
	if err != nil {
		return fmt.Errorf("create signing key: %w", mapErr(err))
	}
	return nil
}

// ListSigningKeys returns every key in every state, ordered by CreatedAt,
// then ID.
func (db *DB) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := db.db.QueryContext(ctx,
		`SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	keys, err := collect(rows, func(r scanner) (storage.SigningKey, error) {
		var (
			k                      storage.SigningKey
			state                  string
			createdAt              int64
			activatedAt, retiredAt sql.NullInt64
		)
		err := r.Scan(&k.ID, &k.Algorithm, &state, &k.PrivateKeyEncrypted, &k.PublicJWK,
			&createdAt, &activatedAt, &retiredAt)
		if err != nil {
			return storage.SigningKey{}, err
		}
		k.State = storage.KeyState(state)
		k.CreatedAt = fromMicros(createdAt)
		k.ActivatedAt = fromNullMicros(activatedAt)
		k.RetiredAt = fromNullMicros(retiredAt)
		return k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keys, nil
}
