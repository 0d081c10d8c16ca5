package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const userColumns = `id, email, email_verified, name, password_hash, disabled, created_at, updated_at`

func scanUser(row scanner) (storage.User, error) {
	var (
		u                    storage.User
		createdAt, updatedAt int64
	)
	err := row.Scan(&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.PasswordHash, &u.Disabled,
		&createdAt, &updatedAt)
	if err != nil {
		return storage.User{}, err
	}
	u.CreatedAt = fromMicros(createdAt)
	u.UpdatedAt = fromMicros(updatedAt)
	return u, nil
}

// CreateUser inserts u.
func (db *DB) CreateUser(ctx context.Context, u storage.User) error {
	_, err := db.db.ExecContext(ctx, `
		INSERT INTO users (`+userColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.EmailVerified, u.Name, u.PasswordHash, u.Disabled,
		micros(u.CreatedAt), micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create user: %w", mapErr(err))
	}
	return nil
}

// GetUser returns the user with this ID.
func (db *DB) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(db.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return storage.User{}, fmt.Errorf("get user: %w", mapErr(err))
	}
	return u, nil
}

// GetUserByEmail returns the user with exactly this (already normalized)
// email.
func (db *DB) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	u, err := scanUser(db.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if err != nil {
		return storage.User{}, fmt.Errorf("get user by email: %w", mapErr(err))
	}
	return u, nil
}

// ListUsers returns all users ordered by CreatedAt, then ID.
func (db *DB) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetUserDisabled sets Disabled and UpdatedAt.
func (db *DB) SetUserDisabled(ctx context.Context, id string, disabled bool, now time.Time) error {
	res, err := db.db.ExecContext(ctx,
		`UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?`, disabled, micros(now), id)
	if err != nil {
		return fmt.Errorf("set user disabled: %w", err)
	}
	if err := wantOneRow(res); err != nil {
		return fmt.Errorf("set user disabled: %w", err)
	}
	return nil
}

// SetUserPassword sets PasswordHash and UpdatedAt.
func (db *DB) SetUserPassword(ctx context.Context, id, passwordHash string, now time.Time) error {
	res, err := db.db.ExecContext(ctx,
		`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, passwordHash, micros(now), id)
	if err != nil {
		return fmt.Errorf("set user password: %w", err)
	}
	if err := wantOneRow(res); err != nil {
		return fmt.Errorf("set user password: %w", err)
	}
	return nil
}
