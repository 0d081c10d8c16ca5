package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"time"

	"github.com/pressly/goose/v3"
	moderncsqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/migrations"
)

// migrateLockWait bounds how long Migrate waits for another process's
// migration to finish, as the Postgres backend does.
const migrateLockWait = 5 * time.Minute

// withProvider runs f with a goose provider over the embedded SQLite
// migrations, holding the migration lock.
func (db *DB) withProvider(ctx context.Context, f func(*goose.Provider) error) (err error) {
	migFS, err := fs.Sub(migrations.FS, "sqlite")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	unlock, err := db.lockMigrations(ctx)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, unlock()) }()
	p, err := goose.NewProvider(goose.DialectSQLite3, db.db, migFS,
		// Migrations are the embedded files only, not whatever Go
		// migrations some other package registered globally.
		goose.WithDisableGlobalRegistry(true),
		// goose would print to stdout, which belongs to the CLI's output;
		// callers report progress from MigrationStatus instead.
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return f(p)
}

// lockMigrations takes the lock that serializes Migrate across processes
// sharing the file, and returns the function that releases it.
//
// goose has no locker for SQLite, and without one two processes migrating a
// new file at once both see migration 1 pending and the second fails on
// CREATE TABLE. The lock is a write transaction held open on a separate,
// empty SQLite file beside the database: SQLite's own file locking is then
// the mutex, it works across processes on every platform SQLite supports,
// and the operating system releases it if the process dies. (Holding a write
// transaction on the database itself would block goose's own writes.)
func (db *DB) lockMigrations(ctx context.Context) (unlock func() error, err error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(1000)")
	ldb, err := sql.Open("sqlite", fileURI(db.path+"-migratelock", q))
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	ldb.SetMaxOpenConns(1)
	conn, err := ldb.Conn(ctx)
	if err != nil {
		ldb.Close()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	release := func() error {
		return errors.Join(conn.Close(), ldb.Close())
	}
	waitCtx, cancel := context.WithTimeout(ctx, migrateLockWait)
	defer cancel()
	for {
		_, err = conn.ExecContext(waitCtx, "BEGIN IMMEDIATE")
		if err == nil {
			break
		}
		// busy_timeout has already waited a second; keep trying until the
		// other process is done, the caller gives up, or the bound passes.
		if !isBusy(err) || waitCtx.Err() != nil {
			return nil, fmt.Errorf("migration lock: %w", errors.Join(err, waitCtx.Err(), release()))
		}
	}
	return func() error {
		// Rolling back (there is nothing to commit) and closing release
		// the lock; closing alone would too.
		_, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		if err := errors.Join(rbErr, release()); err != nil {
			return fmt.Errorf("migration unlock: %w", err)
		}
		return nil
	}, nil
}

func isBusy(err error) bool {
	var sqErr *moderncsqlite.Error
	return errors.As(err, &sqErr) && sqErr.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Migrate applies every pending migration. Concurrent callers, in this
// process or others, serialize on the migration lock file.
func (db *DB) Migrate(ctx context.Context) error {
	err := db.withProvider(ctx, func(p *goose.Provider) error {
		_, err := p.Up(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

// MigrationStatus lists every embedded migration in version order and
// whether the database has it.
func (db *DB) MigrationStatus(ctx context.Context) ([]storage.MigrationStatus, error) {
	var out []storage.MigrationStatus
	err := db.withProvider(ctx, func(p *goose.Provider) error {
		st, err := p.Status(ctx)
		if err != nil {
			return err
		}
		out = make([]storage.MigrationStatus, 0, len(st))
		for _, s := range st {
			m := storage.MigrationStatus{
				Version: s.Source.Version,
				Source:  s.Source.Path,
				Applied: s.State == goose.StateApplied,
			}
			if m.Applied {
				m.AppliedAt = s.AppliedAt.UTC()
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return out, nil
}
