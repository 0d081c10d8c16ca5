package sqlite

import (
	"path/filepath"
	"testing"
)

// TestConnectionSettings checks what Open promises every connection:
// WAL, a busy timeout of at least five seconds, and foreign keys on. The
// pool is drained first so the checks run on connections other than the
// one Open pinged with.
func TestConnectionSettings(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.db.SetMaxIdleConns(0)
	var (
		journal     string
		busy, fkeys int
	)
	for q, dst := range map[string]any{
		"PRAGMA journal_mode": &journal,
		"PRAGMA busy_timeout": &busy,
		"PRAGMA foreign_keys": &fkeys,
	} {
		if err := db.db.QueryRowContext(t.Context(), q).Scan(dst); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if journal != "wal" {
		t.Errorf("journal_mode = %q, want wal", journal)
	}
	if busy < 5000 {
		t.Errorf("busy_timeout = %d ms, want at least 5000", busy)
	}
	if fkeys != 1 {
		t.Errorf("foreign_keys = %d, want 1", fkeys)
	}
}
