package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/migrations"
)

// migrationLockID is the advisory lock key Migrate holds while it works. It
// is Gatehouse's own rather than goose's default, so that another goose-run
// application sharing the database neither waits for us nor we for it.
// (crc32 IEEE of "gatehouse")
const migrationLockID int64 = 0x23a3fcb7

// withProvider runs f with a goose provider over the embedded Postgres
// migrations, on a database/sql view of the pool (goose speaks
// database/sql). Closing that view does not close the pool.
func (db *DB) withProvider(ctx context.Context, f func(*goose.Provider) error) (err error) {
	migFS, err := fs.Sub(migrations.FS, "postgres")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// A session-level advisory lock serializes Migrate across processes:
	// the second waits, then finds nothing pending. Poll every second, for
	// up to five minutes, rather than goose's default of every five.
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID),
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer func() { err = errors.Join(err, sqlDB.Close()) }()
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migFS,
		goose.WithSessionLocker(locker),
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

// Migrate applies every pending migration. Concurrent callers, in this
// process or others, serialize on an advisory lock.
func (db *DB) Migrate(ctx context.Context) error {
	err := db.withProvider(ctx, func(p *goose.Provider) error {
		_, err := p.Up(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
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
		out = convertStatus(st)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	return out, nil
}

func convertStatus(st []*goose.MigrationStatus) []storage.MigrationStatus {
	out := make([]storage.MigrationStatus, 0, len(st))
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
	return out
}
