package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

const signingKeyColumns = `id, algorithm, state, private_key_encrypted, public_jwk,
	created_at, activated_at, retired_at, revoked_at`

// signingKeysLock is the advisory lock key ChangeSigningKeys takes: the
// ASCII bytes of "gh-keys" in an int64, unlikely to collide with another
// application's locks on a shared database.
const signingKeysLock int64 = 0x67682d6b657973

// signingKeysChannel is the NOTIFY channel the signing_keys trigger
// (migration 00003) sends on.
const signingKeysChannel = "gatehouse_signing_keys"

// CreateSigningKey inserts k. The partial unique indexes on active and on
// next keys turn a second one for an algorithm into ErrAlreadyExists.
func (db *DB) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	if err := insertSigningKey(ctx, db.pool, k); err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	return nil
}

func insertSigningKey(ctx context.Context, q execer, k storage.SigningKey) error {
	_, err := q.Exec(ctx, `
		INSERT INTO signing_keys (`+signingKeyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		k.ID, k.Algorithm, string(k.State), k.PrivateKeyEncrypted, k.PublicJWK,
		k.CreatedAt, k.ActivatedAt, k.RetiredAt, k.RevokedAt)
	return mapErr(err)
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
			&k.CreatedAt, &k.ActivatedAt, &k.RetiredAt, &k.RevokedAt)
		if err != nil {
			return storage.SigningKey{}, err
		}
		k.State = storage.KeyState(state)
		k.CreatedAt = k.CreatedAt.UTC()
		k.ActivatedAt = utcPtr(k.ActivatedAt)
		k.RetiredAt = utcPtr(k.RetiredAt)
		k.RevokedAt = utcPtr(k.RevokedAt)
		return k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return keys, nil
}

// ChangeSigningKeys applies c in one transaction, after taking a
// transaction-scoped advisory lock so that instances changing keys at the
// same moment go one after the other; the second then finds its
// preconditions broken and changes nothing.
func (db *DB) ChangeSigningKeys(ctx context.Context, c storage.SigningKeyChanges) error {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeysLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		for _, id := range c.Revoke {
			if err := keyTransition(ctx, tx, id, "revoke", []storage.KeyState{storage.KeyNext, storage.KeyActive, storage.KeyRetired},
				`UPDATE signing_keys SET state = 'revoked', revoked_at = $2 WHERE id = $1`, c.At); err != nil {
				return err
			}
		}
		for _, id := range c.Promote {
			var alg string
			err := tx.QueryRow(ctx, `SELECT algorithm FROM signing_keys WHERE id = $1`, id).Scan(&alg)
			if err != nil {
				return fmt.Errorf("promote %s: %w", id, mapErr(err))
			}
			// Retire first: the partial unique index allows one active
			// key per algorithm at every statement's end.
			if _, err := tx.Exec(ctx, `
				UPDATE signing_keys SET state = 'retired', retired_at = $2
				WHERE algorithm = $1 AND state = 'active'`, alg, c.At); err != nil {
				return fmt.Errorf("promote %s: retire the active key: %w", id, err)
			}
			if err := keyTransition(ctx, tx, id, "promote", []storage.KeyState{storage.KeyNext},
				`UPDATE signing_keys SET state = 'active', activated_at = $2 WHERE id = $1`, c.At); err != nil {
				return err
			}
		}
		for _, id := range c.Retire {
			if err := keyTransition(ctx, tx, id, "retire", []storage.KeyState{storage.KeyActive},
				`UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE id = $1`, c.At); err != nil {
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
				`DELETE FROM signing_keys WHERE id = $1`); err != nil {
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

// keyTransition runs stmt (with $1 = id, then args) on key id if its
// current state is one of from, under a row lock: ErrNotFound if the key
// does not exist, ErrConflict if it is in another state.
func keyTransition(ctx context.Context, tx pgx.Tx, id, what string, from []storage.KeyState, stmt string, args ...any) error {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM signing_keys WHERE id = $1 FOR UPDATE`, id).Scan(&state)
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
	if _, err := tx.Exec(ctx, stmt, append([]any{id}, args...)...); err != nil {
		return fmt.Errorf("%s %s: %w", what, id, mapErr(err))
	}
	return nil
}

// ReplaceSigningKeyCiphertext swaps the encrypted private key if it still
// equals old.
func (db *DB) ReplaceSigningKeyCiphertext(ctx context.Context, id string, old, new []byte) error {
	tag, err := db.pool.Exec(ctx, `
		UPDATE signing_keys SET private_key_encrypted = $3
		WHERE id = $1 AND private_key_encrypted = $2`, id, old, new)
	if err != nil {
		return fmt.Errorf("replace signing key ciphertext: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var one int
	err = db.pool.QueryRow(ctx, `SELECT 1 FROM signing_keys WHERE id = $1`, id).Scan(&one)
	if err != nil {
		return fmt.Errorf("replace signing key ciphertext: %w", mapErr(err))
	}
	return fmt.Errorf("replace signing key ciphertext of %s: changed since read: %w", id, storage.ErrConflict)
}

// SigningKeysVersion returns the signing_keys counter, which the table's
// trigger moves on with every change.
func (db *DB) SigningKeysVersion(ctx context.Context) (int64, error) {
	var v int64
	err := db.pool.QueryRow(ctx,
		`SELECT COALESCE((SELECT version FROM change_counters WHERE name = 'signing_keys'), 0)`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("signing keys version: %w", err)
	}
	return v, nil
}

// WatchSigningKeys LISTENs for the signing_keys trigger's notifications on
// a connection of its own, outside the pool: a listener holds its
// connection for as long as it runs and must not shrink the pool.
func (db *DB) WatchSigningKeys(ctx context.Context, changed func()) error {
	return db.listen(ctx, signingKeysChannel, changed)
}

func (db *DB) listen(ctx context.Context, channel string, changed func()) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("listen %s: connect: %w", channel, err)
	}
	defer func() {
		// A fresh context: ctx may be done, and the close must still be
		// bounded.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("listen %s: %w", channel, err)
	}
	changed()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("listen %s: %w", channel, err)
		}
		changed()
	}
}
