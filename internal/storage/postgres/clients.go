package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const clientColumns = `id, secret_hash, metadata, created_at, updated_at`

func scanClient(row scanner) (storage.Client, error) {
	var (
		c    storage.Client
		meta []byte
	)
	if err := row.Scan(&c.ID, &c.SecretHash, &meta, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return storage.Client{}, err
	}
	if err := json.Unmarshal(meta, &c.Metadata); err != nil {
		return storage.Client{}, fmt.Errorf("client %q: decode metadata: %w", c.ID, err)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	return c, nil
}

// CreateClient inserts c and bumps the clients version, in one
// transaction.
func (db *DB) CreateClient(ctx context.Context, c storage.Client) error {
	meta, err := json.Marshal(c.Metadata)
	if err != nil {
		return fmt.Errorf("create client: encode metadata: %w", err)
	}
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO clients (`+clientColumns+`)
			VALUES ($1, $2, $3, $4, $5)`,
			c.ID, c.SecretHash, string(meta), c.CreatedAt, c.UpdatedAt)
		if err != nil {
			return err
		}
		return bumpClientsVersion(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("create client: %w", mapErr(err))
	}
	return nil
}

// GetClient returns the client with this ID.
func (db *DB) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c, err := scanClient(db.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client: %w", mapErr(err))
	}
	return c, nil
}

// ListClients returns all clients ordered by CreatedAt, then ID.
func (db *DB) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	clients, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Client, error) { return scanClient(r) })
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return clients, nil
}

// DeleteClient removes the client and bumps the clients version, in one
// transaction. Its consents, auth requests, codes, grants, refresh tokens
// and access tokens go with it through ON DELETE CASCADE.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		return bumpClientsVersion(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	return nil
}

// bumpClientsVersion moves the clients counter on, inside the transaction
// that changes the clients. An upsert, so a missing row (a hand-edited
// database) is recreated rather than silently never bumped. Concurrent
// bumps queue on the row lock; client changes are rare.
func bumpClientsVersion(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO change_counters (name, version) VALUES ('clients', 1)
		ON CONFLICT (name) DO UPDATE SET version = change_counters.version + 1`)
	if err != nil {
		return fmt.Errorf("bump clients version: %w", err)
	}
	return nil
}

// ClientsVersion returns the clients counter.
func (db *DB) ClientsVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.pool.QueryRow(ctx,
		`SELECT COALESCE((SELECT version FROM change_counters WHERE name = 'clients'), 0)`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("clients version: %w", err)
	}
	return v, nil
}
