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

const signingKeyColumns = `id, algorithm, state, private_key_encrypted, public_jwk,
	created_at, activated_at, retired_at`

// CreateSigningKey inserts k. The partial unique index on active keys turns
// a second active key for one algorithm into ErrAlreadyExists.
func (db *DB) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO signing_keys (`+signingKeyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.Algorithm, string(k.State), k.PrivateKeyEncrypted, k.PublicJWK,
		k.CreatedAt, k.ActivatedAt, k.RetiredAt)
	if err != nil {
		return fmt.Errorf("create signing key: %w", mapErr(err))
	}
	return nil
}

// ListSigningKeys returns every key in every state, ordered by CreatedAt,
// then ID.
func (db *DB) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.SigningKey, error) {
		var (
			k     storage.SigningKey
			state string
		)
		err := r.Scan(&k.ID, &k.Algorithm, &state, &k.PrivateKeyEncrypted, &k.PublicJWK,
			&k.CreatedAt, &k.ActivatedAt, &k.RetiredAt)
		if err != nil {
			return storage.SigningKey{}, err
		}
		k.State = storage.KeyState(state)
		k.CreatedAt = k.CreatedAt.UTC()
		k.ActivatedAt = utcPtr(k.ActivatedAt)
		k.RetiredAt = utcPtr(k.RetiredAt)
		return k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keys, nil
}
