package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const clientColumns = `id, secret_hash, metadata, created_at, updated_at`

func scanClient(row scanner) (storage.Client, error) {
	var (
		c                    storage.Client
		meta                 string
		createdAt, updatedAt int64
	)
	if err := row.Scan(&c.ID, &c.SecretHash, &meta, &createdAt, &updatedAt); err != nil {
		return storage.Client{}, err
	}
	if err := json.Unmarshal([]byte(meta), &c.Metadata); err != nil {
		return storage.Client{}, fmt.Errorf("client %q: decode metadata: %w", c.ID, err)
	}
	c.CreatedAt = fromMicros(createdAt)
	c.UpdatedAt = fromMicros(updatedAt)
	return c, nil
}

// CreateClient inserts c and bumps the clients version, in one
// transaction.
func (db *DB) CreateClient(ctx context.Context, c storage.Client) error {
	meta, err := json.Marshal(c.Metadata)
	if err != nil {
		return fmt.Errorf("create client: encode metadata: %w", err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
			INSERT INTO clients (`+clientColumns+`)
			VALUES (?, ?, ?, ?, ?)`,
			c.ID, c.SecretHash, string(meta), micros(c.CreatedAt), micros(c.UpdatedAt))
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
	c, err := scanClient(db.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client: %w", mapErr(err))
	}
	return c, nil
}

// ListClients returns all clients ordered by CreatedAt, then ID.
func (db *DB) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	clients, err := collect(rows, scanClient)
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return clients, nil
}

// DeleteClient removes the client and bumps the clients version, in one
// transaction. Its consents, auth requests, codes, grants, refresh tokens
// and access tokens go with it through ON DELETE CASCADE (foreign_keys is
// on for every connection).
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if err := wantOneRow(res); err != nil {
			return err
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
// database) is recreated rather than silently never bumped.
func bumpClientsVersion(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
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
	err := db.db.QueryRowContext(ctx,
		`SELECT COALESCE((SELECT version FROM change_counters WHERE name = 'clients'), 0)`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("clients version: %w", err)
	}
	return v, nil
}
