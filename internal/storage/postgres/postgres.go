package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

var (
	_ storage.Store    = (*DB)(nil)
	_ storage.Migrator = (*DB)(nil)
)

// DB is a storage.Store backed by a PostgreSQL connection pool. It is safe
// for concurrent use.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to the database at databaseURL (a postgres:// URL or a
// keyword/value connection string, as pgx accepts) and checks that it
// answers. It does not migrate; call Migrate.
func Open(ctx context.Context, databaseURL string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse error may quote the connection string, password
		// included; say only what kind of problem it is.
		return nil, errors.New("open postgres: cannot parse database URL")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: ping: %w", err)
	}
	return &DB{pool: pool}, nil
}

// Pool returns the underlying pool, for health checks and for
// LISTEN/NOTIFY; the storage methods are the way to read and write data.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// Close closes every connection in the pool, waiting for the ones in use to
// be released.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// mapErr turns driver errors into the storage sentinels, keeping the driver
// error in the chain for logs and errors.As.
func mapErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
		return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
	}
	return err
}

// scanner is what pgx.Row and pgx.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// utcPtr returns t in UTC, keeping nil as nil. pgx hands timestamptz back in
// the process's local zone; storage promises UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// strs returns s, or an empty slice for nil: the array columns are NOT NULL,
// and pgx encodes a nil slice as NULL.
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
