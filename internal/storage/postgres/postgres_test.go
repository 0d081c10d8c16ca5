package postgres_test

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/internal/storage/storagetest"
	"github.com/gatehouse-idp/gatehouse/migrations"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return pgtest.NewStore(t) })
}

func open(t *testing.T, dbURL string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateIsIdempotentAndReported(t *testing.T) {
	ctx := t.Context()
	db := open(t, pgtest.NewEmptyDatabaseURL(t))

	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus before Migrate: %v", err)
	}
	want := embeddedMigrations(t, "postgres")
	if len(want) < 3 || want[0].Source != "00001_init.sql" || want[1].Source != "00002_tokens.sql" ||
		want[2].Source != "00003_signing_key_lifecycle.sql" {
		t.Fatalf("embedded migrations = %+v, want 00001_init, 00002_tokens, 00003_signing_key_lifecycle first", want)
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("MigrationStatus before Migrate = %+v, want %+v", st, want)
	}

	// AppliedAt comes from the database server's clock.
	before := time.Now().UTC().Add(-time.Minute)
	for i := range 2 {
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
		st, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatalf("MigrationStatus: %v", err)
		}
		if len(st) != len(want) {
			t.Fatalf("MigrationStatus after Migrate #%d = %+v, want %d migrations", i+1, st, len(want))
		}
		for j, m := range st {
			if m.Version != want[j].Version || m.Source != want[j].Source || !m.Applied {
				t.Errorf("MigrationStatus after Migrate #%d: %+v, want %s applied", i+1, m, want[j].Source)
			}
			if at := m.AppliedAt; at.Before(before) || at.After(time.Now().Add(time.Minute)) || at.Location() != time.UTC {
				t.Errorf("%s: AppliedAt = %v, want about now, in UTC", m.Source, at)
			}
		}
	}
}

// TestConcurrentMigrate is several replicas starting at once on a new
// database: every Migrate must succeed, and the schema must be applied
// once.
func TestConcurrentMigrate(t *testing.T) {
	ctx := t.Context()
	dbURL := pgtest.NewEmptyDatabaseURL(t)
	const replicas = 4
	dbs := make([]*postgres.DB, replicas)
	for i := range dbs {
		dbs[i] = open(t, dbURL)
	}
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}
	for _, version := range []int{1, 2} {
		var applied int
		err := dbs[0].Pool().QueryRow(ctx,
			`SELECT count(*) FROM goose_db_version WHERE version_id = $1 AND is_applied`, version).Scan(&applied)
		if err != nil {
			t.Fatal(err)
		}
		if applied != 1 {
			t.Errorf("migration %d recorded %d times, want 1", version, applied)
		}
	}
	// The schema works.
	if _, err := dbs[1].ListUsers(ctx); err != nil {
		t.Errorf("ListUsers after concurrent Migrate: %v", err)
	}
}

func TestOpen(t *testing.T) {
	t.Run("bad URL does not echo the password", func(t *testing.T) {
		_, err := postgres.Open(t.Context(), "postgres://u:hunter2@host:notaport/db")
		if err == nil {
			t.Fatal("Open: got nil error")
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error reveals the password: %v", err)
		}
	})
	t.Run("unreachable server fails", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		// Port 1 on localhost: connection refused at once.
		db, err := postgres.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
		if err == nil {
			db.Close()
			t.Fatal("Open: got nil error")
		}
	})
	t.Run("Ping and Pool", func(t *testing.T) {
		db := pgtest.NewStore(t)
		if err := db.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if err := db.Pool().Ping(t.Context()); err != nil {
			t.Fatalf("Pool().Ping: %v", err)
		}
	})
}

// embeddedMigrations lists the migrations embedded for dialect, unapplied,
// in version order: what MigrationStatus reports on an empty database.
// Derived rather than spelled out, so that a new migration needs no edit
// here.
func embeddedMigrations(t *testing.T, dialect string) []storage.MigrationStatus {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, dialect)
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.MigrationStatus
	for _, e := range entries {
		v, err := strconv.ParseInt(strings.SplitN(e.Name(), "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration %s: %v", e.Name(), err)
		}
		out = append(out, storage.MigrationStatus{Version: v, Source: e.Name()})
	}
	return out
}
