package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
)

// defaultDataDir is where idp dev keeps its database and key-encryption
// key, relative to the working directory.
const defaultDataDir = ".gatehouse"

// store is what the commands need of a backend.
type store interface {
	storage.Store
	storage.Migrator
}

// storeFlags choose the database: Postgres when a URL is given, otherwise
// the SQLite database in the data directory.
type storeFlags struct {
	databaseURL string
	dataDir     string
}

func (sf *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&sf.databaseURL, "database-url", "", "Postgres URL (postgres://user:pass@host:5432/db); when empty, the SQLite database in --data-dir")
	fs.StringVar(&sf.dataDir, "data-dir", defaultDataDir, "data directory of idp dev (SQLite database and key-encryption key)")
}

func sqlitePath(dataDir string) string { return filepath.Join(dataDir, "gatehouse.db") }

// open connects to the chosen database. It does not migrate.
func (sf *storeFlags) open(ctx context.Context) (store, string, error) {
	if sf.databaseURL != "" {
		db, err := postgres.Open(ctx, sf.databaseURL)
		if err != nil {
			return nil, "", fmt.Errorf("open Postgres (%s): %w", settingName("database-url"), err)
		}
		return db, "Postgres", nil
	}
	path := sqlitePath(sf.dataDir)
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, "", fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	return db, "SQLite at " + path, nil
}

// openMigrated opens the database and applies pending migrations, so
// admin commands work on a fresh data directory too.
func (sf *storeFlags) openMigrated(ctx context.Context) (store, error) {
	db, _, err := sf.open(ctx)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}
