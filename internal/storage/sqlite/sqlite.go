package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	moderncsqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

var (
	_ storage.Store    = (*DB)(nil)
	_ storage.Migrator = (*DB)(nil)
)

// busyTimeout is how long a connection waits for another connection or
// process to release the write lock before failing with SQLITE_BUSY.
// Transactions here are a few statements long, so waiting this long means
// something is badly stuck.
const busyTimeout = 10 * time.Second

// DB is a storage.Store backed by one SQLite file. It is safe for
// concurrent use, and several processes may open the same file.
type DB struct {
	db   *sql.DB
	path string
}

// Open opens (creating if needed) the SQLite database at path, creating
// its parent directories. It does not migrate; call Migrate.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		// A pooled in-memory database would be a different, empty database
		// on every connection; and URIs would bypass the settings below.
		return nil, fmt.Errorf("open sqlite: %q: want a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// The database holds password hashes and encrypted keys: keep it to
	// the owner. SQLite gives its -wal and -shm files the main file's mode,
	// so creating the file first is enough.
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}

	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	// WAL lets readers proceed while one connection writes, in this
	// process or another.
	q.Add("_pragma", "journal_mode(WAL)")
	// Off by default in SQLite, per connection; the schema's ON DELETE
	// CASCADE (DeleteClient) depends on it.
	q.Add("_pragma", "foreign_keys(1)")
	// BEGIN IMMEDIATE takes the write lock up front, where busy_timeout
	// applies. A deferred transaction that reads and then writes fails at
	// once with SQLITE_BUSY when another writer got in between, without
	// waiting.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", fileURI(abs, q))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := pingWhileBusy(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	return &DB{db: db, path: abs}, nil
}

// pingWhileBusy opens the first connection, retrying while SQLite reports
// SQLITE_BUSY. When several processes open a brand-new file at once (the
// server and the CLI on a fresh data directory), the switch to WAL can
// report SQLITE_BUSY at once instead of waiting in the busy handler; it
// succeeds as soon as the other process has finished. The retries stop
// after busyTimeout, like any other wait for the database.
func pingWhileBusy(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.PingContext(ctx)
		var sqErr *moderncsqlite.Error
		if err == nil || !errors.As(err, &sqErr) || sqErr.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fileURI returns the SQLite URI for the file at the absolute path abs with
// the driver parameters q.
func fileURI(abs string, q url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // Windows: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Ping reports whether the database can be used.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w", err)
	}
	return nil
}

// Close closes every connection.
func (db *DB) Close() error {
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("close sqlite: %w", err)
	}
	return nil
}

// mapErr turns driver errors into the storage sentinels, keeping the driver
// error in the chain.
func mapErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	var sqErr *moderncsqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
		}
	}
	return err
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// Times are stored as unix microseconds: the precision storage promises,
// exact, and sortable as integers.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// nullMicros is micros for optional times: nil is stored as NULL.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// jsonList encodes a string list as a JSON array; nil becomes [].
func jsonList(s []string) string {
	if s == nil {
		return "[]"
	}
	// Marshalling a []string cannot fail: invalid UTF-8 is coerced, not
	// rejected.
	b, _ := json.Marshal(s)
	return string(b)
}

// listColumn scans a JSON array column into a []string.
type listColumn struct{ dst *[]string }

func (l listColumn) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("list column: unexpected %T", src)
	}
	var s []string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("list column: %w", err)
	}
	*l.dst = s
	return nil
}

func list(dst *[]string) sql.Scanner { return listColumn{dst} }

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// inTx runs f in a transaction (BEGIN IMMEDIATE, see Open), committing if f
// returns nil and rolling back otherwise.
func (db *DB) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := f(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// ignoreDone drops the error Rollback returns when the context already
// ended the transaction: the rollback happened, nothing to report.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// wantOneRow turns an update that matched no row into ErrNotFound.
func wantOneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}
