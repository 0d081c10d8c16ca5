package sqlitetest

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
)

// NewPath returns the path of a database file that does not exist yet, in
// a directory removed when the test ends.
func NewPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "gatehouse.db")
}

// NewStore opens a new, migrated SQLite store in a directory of its own and
// closes it when the test ends.
func NewStore(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), NewPath(t))
	if err != nil {
		t.Fatalf("sqlitetest: %v", err)
	}
	// Registered before the directory's removal runs (cleanups run last
	// in, first out), so the file is closed before it is deleted.
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("sqlitetest: %v", err)
		}
	})
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("sqlitetest: %v", err)
	}
	return db
}
