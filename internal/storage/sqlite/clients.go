package sqlite

import (
	"context"
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

// CreateClient inserts c.
func (db *DB) CreateClient(ctx context.Context, c storage.Client) error {
	meta, err := json.Marshal(c.Metadata)
	if err != nil {
		return fmt.Errorf("create client: encode metadata: %w", err)
	}
	_, err = db.db.ExecContext(ctx, `
		INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.SecretHash, string(meta), micros(c.CreatedAt), micros(c.UpdatedAt))
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

// DeleteClient removes the client. Its consents, auth requests, codes and
// grants go with it through ON DELETE CASCADE (foreign_keys is on for every
// connection), in the same statement.
func (db *DB) DeleteClient(ctx context.Context, id string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete client: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("delete client: %w", storage.ErrNotFound)
	}
	return nil
}
