package storage

import (
	"context"
	"time"
)

// MigrationStatus is one schema migration known to a backend and whether
// the database has it.
type MigrationStatus struct {
	Version   int64     // the number the migration file starts with
	Source    string    // the migration file, e.g. "00001_init.sql"
	Applied   bool      // whether the database has it
	AppliedAt time.Time // when it was applied, in UTC; zero if not applied
}

// Migrator brings a database's schema up to date. Both backends implement
// it; it is separate from Store because only cmd/idp (idp migrate, start-up)
// and tests need it.
type Migrator interface {
	// Migrate applies every pending migration. It is idempotent, and safe
	// when several processes call it on one database at once: they
	// serialize, and the later ones find nothing to do.
	Migrate(ctx context.Context) error
	// MigrationStatus lists every migration the binary knows, in version
	// order, with whether it has been applied.
	MigrationStatus(ctx context.Context) ([]MigrationStatus, error)
}
