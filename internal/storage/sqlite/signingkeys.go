package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const signingKeyColumns = `id, algorithm, state, private_key_encrypted, public_jwk,
	created_at, activated_at, retired_at, revoked_at`

// CreateSigningKey inserts k. The partial unique indexes on active and on
// next keys turn a second one for an algorithm into ErrAlreadyExists.
func (db *DB) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if err := insertSigningKey(ctx, db.db, k); err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	return nil
}

// sqlExecer is what *sql.DB and *sql.Tx have in common for writes.
type sqlExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertSigningKey(ctx context.Context, e sqlExecer, k storage.SigningKey) error {
	_, err := e.ExecContext(ctx, `
		INSERT INTO signing_keys (`+signingKeyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, string(k.State), k.PrivateKeyEncrypted, k.PublicJWK,
		micros(k.CreatedAt), nullMicros(k.ActivatedAt), nullMicros(k.RetiredAt), nullMicros(k.RevokedAt))
	return mapErr(err)
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
			k                                 storage.SigningKey
			state                             string
			createdAt                         int64
			activatedAt, retiredAt, revokedAt sql.NullInt64
		)
		err := r.Scan(&k.ID, &k.Algorithm, &state, &k.PrivateKeyEncrypted, &k.PublicJWK,
			&createdAt, &activatedAt, &retiredAt, &revokedAt)
		if err != nil {
			return storage.SigningKey{}, err
		}
		k.State = storage.KeyState(state)
		k.CreatedAt = fromMicros(createdAt)
		k.ActivatedAt = fromNullMicros(activatedAt)
		k.RetiredAt = fromNullMicros(retiredAt)
		k.RevokedAt = fromNullMicros(revokedAt)
		return k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keys, nil
}

// ChangeSigningKeys applies c in one write transaction. BEGIN IMMEDIATE
// (see Open) takes the database write lock first, so processes changing
// keys at the same moment go one after the other; the second then finds
// its preconditions broken and changes nothing.
func (db *DB) ChangeSigningKeys(ctx context.Context, c storage.SigningKeyChanges) error {
	at := micros(c.At)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range c.Revoke {
			if err := keyTransition(ctx, tx, id, "revoke", []storage.KeyState{storage.KeyNext, storage.KeyActive, storage.KeyRetired},
				`UPDATE signing_keys SET state = 'revoked', revoked_at = ? WHERE id = ?`, at, id); err != nil {
				return err
			}
		}
		for _, id := range c.Promote {
			var alg string
			err := tx.QueryRowContext(ctx, `SELECT algorithm FROM signing_keys WHERE id = ?`, id).Scan(&alg)
			if err != nil {
				return fmt.Errorf("promote %s: %w", id, mapErr(err))
			}
			// Retire first: the partial unique index allows one active
			// key per algorithm.
			if _, err := tx.ExecContext(ctx, `
				UPDATE signing_keys SET state = 'retired', retired_at = ?
				WHERE algorithm = ? AND state = 'active'`, at, alg); err != nil {
				return fmt.Errorf("promote %s: retire the active key: %w", id, err)
			}
			if err := keyTransition(ctx, tx, id, "promote", []storage.KeyState{storage.KeyNext},
				`UPDATE signing_keys SET state = 'active', activated_at = ? WHERE id = ?`, at, id); err != nil {
				return err
			}
		}
		for _, id := range c.Retire {
			if err := keyTransition(ctx, tx, id, "retire", []storage.KeyState{storage.KeyActive},
				`UPDATE signing_keys SET state = 'retired', retired_at = ? WHERE id = ?`, at, id); err != nil {
				return err
			}
		}
		for _, k := range c.Create {
			if err := insertSigningKey(ctx, tx, k); err != nil {
				return fmt.Errorf("create %s: %w", k.ID, err)
			}
		}
		for _, id := range c.Delete {
			if err := keyTransition(ctx, tx, id, "delete", []storage.KeyState{storage.KeyRetired, storage.KeyRevoked},
				`DELETE FROM signing_keys WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("change signing keys: %w", err)
	}
	return nil
}

// keyTransition runs stmt with args on key id if its current state is one
// of from (the write transaction already excludes other writers):
// ErrNotFound if the key does not exist, ErrConflict if it is in another
// state.
func keyTransition(ctx context.Context, tx *sql.Tx, id, what string, from []storage.KeyState, stmt string, args ...any) error {
	var state string
	err := tx.QueryRowContext(ctx, `SELECT state FROM signing_keys WHERE id = ?`, id).Scan(&state)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, mapErr(err))
	}
	ok := false
	for _, s := range from {
		ok = ok || storage.KeyState(state) == s
	}
	if !ok {
		return fmt.Errorf("%s %s: key is %s: %w", what, id, state, storage.ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, mapErr(err))
	}
	return nil
}

// ReplaceSigningKeyCiphertext swaps the encrypted private key if it still
// equals old.
func (db *DB) ReplaceSigningKeyCiphertext(ctx context.Context, id string, old, new []byte) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var cur []byte
		err := tx.QueryRowContext(ctx, `SELECT private_key_encrypted FROM signing_keys WHERE id = ?`, id).Scan(&cur)
		if err != nil {
			return fmt.Errorf("replace signing key ciphertext: %w", mapErr(err))
		}
		if string(cur) != string(old) {
			return fmt.Errorf("replace signing key ciphertext of %s: changed since read: %w", id, storage.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE signing_keys SET private_key_encrypted = ? WHERE id = ?`, new, id); err != nil {
			return fmt.Errorf("replace signing key ciphertext: %w", err)
		}
		return nil
	})
}

// SigningKeysVersion returns the signing_keys counter, which the table's
// triggers move on with every change.
func (db *DB) SigningKeysVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.db.QueryRowContext(ctx,
		`SELECT COALESCE((SELECT version FROM change_counters WHERE name = 'signing_keys'), 0)`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("signing keys version: %w", err)
	}
	return v, nil
}

// WatchSigningKeys has nothing to listen to in SQLite: it waits for ctx.
// Callers poll SigningKeysVersion, which sees changes made by any process.
func (db *DB) WatchSigningKeys(ctx context.Context, _ func()) error {
	<-ctx.Done()
	return ctx.Err()
}
