package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/migrations"
)

// EnvAdminURL names the environment variable that points tests at a
// Postgres server: a connection URL for a role that may create databases.
const EnvAdminURL = "GATEHOUSE_TEST_DATABASE_URL"

// DefaultAdminURL is used when EnvAdminURL is unset: a local server with
// trust authentication, as on developer machines and CI.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// templateFormat is part of the template's name. Bump it when the way
// templates are built changes (not the migrations: those are hashed).
const templateFormat = "1"

// templateLockID is the advisory lock key held while a template is built,
// so concurrent test binaries build each template once.
const templateLockID int64 = 0x67617465_74706c // "gate" "tpl"

// server is the Postgres instance this test binary uses, set up once.
type server struct {
	admin    *pgxpool.Pool
	adminURL string
	template string
}

// The server is shared by every test in the binary: connecting, and
// building the template, are what make a fresh database cheap.
var (
	setupOnce sync.Once
	shared    *server
	setupErr  error
)

func getServer(t testing.TB) *server {
	t.Helper()
	setupOnce.Do(func() {
		shared, setupErr = setup(t.Context())
	})
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	return shared
}

func setup(ctx context.Context) (*server, error) {
	adminURL := os.Getenv(EnvAdminURL)
	if adminURL == "" {
		adminURL = DefaultAdminURL
	}
	admin, err := connectAdmin(ctx, adminURL)
	if err != nil {
		ctrURL, ctrErr := startContainer(ctx)
		if ctrErr != nil {
			return nil, fmt.Errorf("no Postgres server for tests.\n"+
				"  %s: %v\n"+
				"  Docker fallback (testcontainers): %v\n"+
				"Start Postgres locally (trust auth, user postgres, port 5432), "+
				"or set %s to the URL of a role that may CREATE DATABASE, or start Docker.",
				redact(adminURL), err, ctrErr, EnvAdminURL)
		}
		adminURL = ctrURL
		if admin, err = connectAdmin(ctx, adminURL); err != nil {
			return nil, fmt.Errorf("postgres container: %w", err)
		}
	}
	s := &server{admin: admin, adminURL: adminURL}
	if err := s.ensureTemplate(ctx); err != nil {
		admin.Close()
		return nil, err
	}
	return s, nil
}

func connectAdmin(ctx context.Context, adminURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, errors.New("cannot parse the URL")
	}
	// CREATE and DROP DATABASE are serialized by the server anyway.
	cfg.MaxConns = 4
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// startContainer starts a throwaway Postgres in Docker and returns its
// admin URL. testcontainers' reaper removes the container when the test
// binary exits.
func startContainer(ctx context.Context) (adminURL string, err error) {
	// testcontainers panics, rather than failing, on some hosts without
	// Docker.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker unavailable: %v", r)
		}
	}()
	provider, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return "", fmt.Errorf("docker unavailable: %w", err)
	}
	defer provider.Close()
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := provider.Health(hctx); err != nil {
		return "", fmt.Errorf("docker unavailable: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ctr, err := tcpostgres.Run(rctx, "postgres:17-alpine",
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		return "", fmt.Errorf("start postgres container: %w", err)
	}
	return ctr.ConnectionString(rctx, "sslmode=disable")
}

// templateName is the template database for the current migrations.
func templateName() (string, error) {
	h := sha256.New()
	h.Write([]byte(templateFormat))
	err := fs.WalkDir(migrations.FS, "postgres", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", path, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash migrations: %w", err)
	}
	return "gatehouse_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// ensureTemplate makes sure the template for the current migrations
// exists, building it if no one has.
func (s *server) ensureTemplate(ctx context.Context) error {
	name, err := templateName()
	if err != nil {
		return err
	}
	s.template = name
	if ok, err := s.exists(ctx, name); err != nil || ok {
		return err
	}

	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("build template: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, templateLockID); err != nil {
		return fmt.Errorf("build template: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, templateLockID)
	// Another binary may have built it while we waited for the lock.
	if ok, err := s.exists(ctx, name); err != nil || ok {
		return err
	}

	// Build under a temporary name and rename at the end, so the
	// template's name only ever refers to a complete template. A leftover
	// building database is from a build that died; we hold the lock, so
	// no one else is using it.
	building := name + "_building"
	for _, q := range []string{
		`DROP DATABASE IF EXISTS ` + ident(building) + ` WITH (FORCE)`,
		`CREATE DATABASE ` + ident(building) + ` TEMPLATE template0`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("build template: %w", err)
		}
	}
	db, err := postgres.Open(ctx, databaseURL(s.adminURL, building))
	if err != nil {
		return fmt.Errorf("build template: %w", err)
	}
	err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		return fmt.Errorf("build template: %w", err)
	}
	for _, q := range []string{
		// No one may connect to (and so change) the template; CREATE
		// DATABASE ... TEMPLATE also refuses a source with connections.
		`ALTER DATABASE ` + ident(building) + ` WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`,
		`ALTER DATABASE ` + ident(building) + ` RENAME TO ` + ident(name),
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("build template: %w", err)
		}
	}
	return nil
}

func (s *server) exists(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := s.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	return ok, nil
}

// NewDatabaseURL creates a new, uniquely named database holding the
// migrated schema and no data, drops it when the test ends, and returns its
// URL.
func NewDatabaseURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, getServer(t).template)
}

// NewEmptyDatabaseURL is NewDatabaseURL without the schema: for testing
// migrations themselves.
func NewEmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, "template0")
}

func newDatabase(t testing.TB, template string) string {
	t.Helper()
	s := getServer(t)
	var b [8]byte
	rand.Read(b[:])
	name := "gatehouse_test_" + hex.EncodeToString(b[:])
	_, err := s.admin.Exec(t.Context(), `CREATE DATABASE `+ident(name)+` TEMPLATE `+ident(template))
	if err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		// The test's context is over by now; the drop still has to
		// happen. FORCE ends connections a test left open.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Minute)
		defer cancel()
		if _, err := s.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(name)+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return databaseURL(s.adminURL, name)
}

// NewStore opens a new, migrated, empty database (see NewDatabaseURL) and
// closes it when the test ends, before the database is dropped.
func NewStore(t testing.TB) *postgres.DB {
	t.Helper()
	dbURL := NewDatabaseURL(t)
	db, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// databaseURL returns adminURL pointed at the database name instead.
func databaseURL(adminURL, name string) string {
	if strings.HasPrefix(adminURL, "postgres://") || strings.HasPrefix(adminURL, "postgresql://") {
		if u, err := url.Parse(adminURL); err == nil {
			u.Path = "/" + name
			u.RawPath = ""
			return u.String()
		}
	}
	// Keyword/value form: a later keyword overrides an earlier one.
	return adminURL + " dbname=" + name
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// redact hides a password in a connection URL, for error messages.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
