package sqlite

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// MigrateTo applies the migrations up to and including version: a
// database as an older release left it, for upgrade tests.
func (db *DB) MigrateTo(ctx context.Context, version int64) error {
	return db.withProvider(ctx, func(p *goose.Provider) error {
		_, err := p.UpTo(ctx, version)
		return err
	})
}

// MigrateDownTo rolls the migrations after version back.
func (db *DB) MigrateDownTo(ctx context.Context, version int64) error {
	return db.withProvider(ctx, func(p *goose.Provider) error {
		_, err := p.DownTo(ctx, version)
		return err
	})
}

// SQL is the underlying handle, for tests that write rows the way an older
// schema had them.
func (db *DB) SQL() *sql.DB { return db.db }

// ExecRaw runs one statement outside the Store interface, for conformance
// cases that check what the database itself refuses.
func (db *DB) ExecRaw(ctx context.Context, sql string) error {
	_, err := db.db.ExecContext(ctx, sql)
	return err
}
