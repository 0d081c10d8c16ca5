package sqlite_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/storagetest"
	"github.com/gatehouse-idp/gatehouse/migrations"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return sqlitetest.NewStore(t) })
}

func open(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateIsIdempotentAndReported(t *testing.T) {
	ctx := t.Context()
	db := open(t, sqlitetest.NewPath(t))

	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus before Migrate: %v", err)
	}
	want := embeddedMigrations(t, "sqlite")
	if len(want) < 3 || want[0].Source != "00001_init.sql" || want[1].Source != "00002_tokens.sql" ||
		want[2].Source != "00003_signing_key_lifecycle.sql" {
		t.Fatalf("embedded migrations = %+v, want 00001_init, 00002_tokens, 00003_signing_key_lifecycle first", want)
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("MigrationStatus before Migrate = %+v, want %+v", st, want)
	}

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

func TestOpen(t *testing.T) {
	t.Run("creates parent directories and an owner-only file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a", "b", "gatehouse.db")
		db := open(t, path)
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("database file mode = %v, want no access for group and others", perm)
		}
		if db.Path() != path {
			t.Errorf("Path() = %q, want %q", db.Path(), path)
		}
	})
	t.Run("path with URI metacharacters", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "we?ird #dir%20", "gate house.db")
		db := open(t, path)
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("database not at the path given: %v", err)
		}
	})
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		t.Run(fmt.Sprintf("rejects %q", path), func(t *testing.T) {
			if db, err := sqlite.Open(t.Context(), path); err == nil {
				db.Close()
				t.Fatalf("Open(%q): got nil error", path)
			}
		})
	}
}

// TestTwoHandlesWriteConcurrently is the server and the CLI on one file:
// two independent pools, both migrating and writing at once. Every write
// must succeed (waiting for the lock, not failing with SQLITE_BUSY).
func TestTwoHandlesWriteConcurrently(t *testing.T) {
	ctx := t.Context()
	path := sqlitetest.NewPath(t)
	handles := []*sqlite.DB{open(t, path), open(t, path)}

	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for h, db := range handles {
		wg.Go(func() {
			if err := db.Migrate(ctx); err != nil {
				errs <- fmt.Errorf("handle %d: Migrate: %w", h, err)
			}
		})
	}
	wg.Wait()

	const writers, perWriter = 4, 25
	for h, db := range handles {
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					id := fmt.Sprintf("h%d-w%d-%d", h, w, i)
					u := storage.User{ID: id, Email: id + "@example.com", CreatedAt: time.Now(), UpdatedAt: time.Now()}
					if err := db.CreateUser(ctx, u); err != nil {
						errs <- fmt.Errorf("CreateUser %s: %w", id, err)
						continue
					}
					s := storage.Session{ID: id, SecretHash: []byte(id), UserID: id, ExpiresAt: time.Now().Add(time.Hour)}
					if err := db.CreateSession(ctx, s); err != nil {
						errs <- fmt.Errorf("CreateSession %s: %w", id, err)
						continue
					}
					// Read from the other handle, then write through it.
					other := handles[1-h]
					if err := other.TouchSession(ctx, id, time.Now()); err != nil {
						errs <- fmt.Errorf("TouchSession %s: %w", id, err)
					}
					if err := other.EndSession(ctx, id, time.Now()); err != nil {
						errs <- fmt.Errorf("EndSession %s: %w", id, err)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	users, err := handles[0].ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(handles) * writers * perWriter; len(users) != want {
		t.Errorf("ListUsers: %d users, want %d", len(users), want)
	}
}

// childEnv names the database file a child process of
// TestSeparateProcesses works on; the test binary re-runs itself as the
// child.
const childEnv = "GATEHOUSE_SQLITE_TEST_CHILD_DB"

// TestSeparateProcesses runs three processes against one new file at once:
// each migrates, writes, and races the others to create the one active
// signing key. Unlike two handles in one process, this goes through the
// operating system's file locks.
func TestSeparateProcesses(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("running as a child process")
	}
	path := sqlitetest.NewPath(t)
	const children = 3
	cmds := make([]*exec.Cmd, children)
	outs := make([]strings.Builder, children)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprintf("GATEHOUSE_SQLITE_TEST_CHILD_ID=%d", i))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		cmds[i] = cmd
	}
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i].String())
		}
	}
	if t.Failed() {
		return
	}

	db := open(t, path)
	users, err := db.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := children * childUsers; len(users) != want {
		t.Errorf("ListUsers: %d users, want %d", len(users), want)
	}
	keys, err := db.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Errorf("ListSigningKeys: %d keys, want exactly 1 (one process wins)", len(keys))
	}
}

const childUsers = 50

// TestChildProcess is TestSeparateProcesses's child; on its own it does
// nothing.
func TestChildProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("only runs as a child of TestSeparateProcesses")
	}
	id := os.Getenv("GATEHOUSE_SQLITE_TEST_CHILD_ID")
	ctx := t.Context()
	db := open(t, path)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	for i := range childUsers {
		uid := fmt.Sprintf("p%s-%d", id, i)
		u := storage.User{ID: uid, Email: uid + "@example.com", CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := db.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
	}
	err := db.CreateSigningKey(ctx, storage.SigningKey{
		ID: "key-" + id, Algorithm: "RS256", State: storage.KeyActive,
		PrivateKeyEncrypted: []byte("x"), PublicJWK: []byte("{}"), CreatedAt: time.Now(),
	})
	if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateSigningKey: %v", err)
	}
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
