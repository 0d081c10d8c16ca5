package clients_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
)

// opener returns a fresh, migrated, empty store and a function that dumps
// every byte the backend holds about clients, as stored: what an attacker
// with a copy of the database would have.
type opener = func(testing.TB) (storage.Store, func(testing.TB) []byte)

// Tests run against real storage, never a mock: every backend.
var backends = []struct {
	name string
	open opener
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

// eachBackend runs test once per backend, as a subtest named after it.
func eachBackend(t *testing.T, test func(t *testing.T, open opener)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open) })
	}
}

func openSQLite(tb testing.TB) (storage.Store, func(testing.TB) []byte) {
	tb.Helper()
	dir := tb.TempDir()
	db, err := sqlite.Open(tb.Context(), filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(tb.Context()); err != nil {
		tb.Fatalf("migrate sqlite: %v", err)
	}
	// The database file and its -wal and -shm companions.
	dump := func(tb testing.TB) []byte {
		tb.Helper()
		files, err := filepath.Glob(filepath.Join(dir, "*"))
		if err != nil || len(files) == 0 {
			tb.Fatalf("no database files in %s: %v", dir, err)
		}
		var all bytes.Buffer
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				tb.Fatal(err)
			}
			all.Write(b)
		}
		return all.Bytes()
	}
	return db, dump
}

func openPostgres(tb testing.TB) (storage.Store, func(testing.TB) []byte) {
	tb.Helper()
	dbURL := pgtest.NewDatabaseURL(tb)
	db, err := postgres.Open(tb.Context(), dbURL)
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	// Every column of every clients row, as text (bytea as hex).
	dump := func(tb testing.TB) []byte {
		tb.Helper()
		conn, err := pgx.Connect(tb.Context(), dbURL)
		if err != nil {
			tb.Fatalf("connect to %s: %v", dbURL, err)
		}
		defer conn.Close(tb.Context())
		var rows string
		if err := conn.QueryRow(tb.Context(), `SELECT coalesce(string_agg(c::text, E'\n'), '') FROM clients c`).Scan(&rows); err != nil {
			tb.Fatal(err)
		}
		return []byte(rows)
	}
	return db, dump
}
