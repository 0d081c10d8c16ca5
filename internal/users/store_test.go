package users_test

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
)

type opener = func(testing.TB) storage.Store

// Tests run against real storage, never a mock: every backend, each test
// with a fresh, migrated, empty database.
var backends = []struct {
	name string
	open opener
}{
	{"sqlite", openSQLite},
	{"postgres", func(tb testing.TB) storage.Store { return pgtest.NewStore(tb) }},
}

// eachBackend runs test once per backend, as a subtest named after it.
func eachBackend(t *testing.T, test func(t *testing.T, open opener)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open) })
	}
}

func openSQLite(tb testing.TB) storage.Store {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "gatehouse.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(tb.Context()); err != nil {
		tb.Fatalf("migrate sqlite: %v", err)
	}
	return db
}
