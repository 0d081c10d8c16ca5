package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const userColumns = `id, email, email_verified, name, password_hash, disabled, created_at, updated_at`

func scanUser(row scanner) (storage.User, error) {
	var u storage.User
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.PasswordHash, &u.Disabled,
		&u.CreatedAt, &u.UpdatedAt)
	if err != nil {
		return storage.User{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	u.UpdatedAt = u.UpdatedAt.UTC()
	return u, nil
}

// CreateUser inserts u.
func (db *DB) CreateUser(ctx context.Context, u storage.User) error {
	_, err := db.pool.Exec(ctx, `
		INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Email, u.EmailVerified, u.Name, u.PasswordHash, u.Disabled, u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return fmt.Errorf("create user: %w", mapErr(err))
	}
	return nil
}

// GetUser returns the user with this ID.
func (db *DB) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return storage.User{}, fmt.Errorf("get user: %w", mapErr(err))
	}
	return u, nil
}

// GetUserByEmail returns the user with exactly this (already normalized)
// email.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if err != nil {
		return storage.User{}, fmt.Errorf("get user by email: %w", mapErr(err))
	}
	return u, nil
}

// ListUsers returns all users ordered by CreatedAt, then ID.
func (db *DB) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetUserDisabled sets Disabled and UpdatedAt.
func (db *DB) SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	tag, err := db.pool.Exec(ctx,
		`UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1`, id, disabled, now)
	if err != nil {
		return fmt.Errorf("set user disabled: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set user disabled: %w", storage.ErrNotFound)
	}
	return nil
}

// SetUserPassword sets PasswordHash and UpdatedAt.
func (db *DB) SetUserPassword(ctx context.Context, id, passwordHash string, now time.Time) error {
	tag, err := db.pool.Exec(ctx,
		`UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, id, passwordHash, now)
	if err != nil {
		return fmt.Errorf("set user password: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set user password: %w", storage.ErrNotFound)
	}
	return nil
}
