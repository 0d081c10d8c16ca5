package pgtest_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

func TestNewStoreIsMigratedAndEmpty(t *testing.T) {
	start := time.Now()
	db := pgtest.NewStore(t)
	t.Logf("first store (may include building the template): %v", time.Since(start))

	st, err := db.MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) == 0 {
		t.Fatal("MigrationStatus: no migrations")
	}
	for _, m := range st {
		if !m.Applied {
			t.Errorf("migration %d (%s) not applied", m.Version, m.Source)
		}
	}
	users, err := db.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 0 {
		t.Errorf("fresh database has %d users", len(users))
	}
}

func TestDatabasesAreSeparateAndDropped(t *testing.T) {
	var first string
	t.Run("first", func(t *testing.T) {
		first = pgtest.NewDatabaseURL(t)
	})
	second := pgtest.NewDatabaseURL(t)
	if first == second {
		t.Fatalf("two tests got the same database %s", first)
	}
	pool := pgtest.NewStore(t).Pool()
	for _, tc := range []struct {
		url    string
		exists bool
	}{
		{first, false}, // its test has ended
		{second, true},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		var exists bool
		err = pool.QueryRow(t.Context(),
			`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
		if err != nil {
			t.Fatal(err)
		}
		if exists != tc.exists {
			t.Errorf("database %s: exists = %v, want %v", name, exists, tc.exists)
		}
	}
}

// TestFreshDatabaseCost reports what a test pays for its own database:
// CREATE DATABASE from the template, and DROP DATABASE at cleanup.
func TestFreshDatabaseCost(t *testing.T) {
	pgtest.NewDatabaseURL(t) // find or build the template outside the timing
	const n = 20
	start := time.Now()
	for i := range n {
		t.Run(fmt.Sprint(i), func(t *testing.T) { pgtest.NewDatabaseURL(t) })
	}
	t.Logf("fresh database, create + drop: %v each (mean of %d)", time.Since(start)/n, n)
}
