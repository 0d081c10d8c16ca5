package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

// Storage in these tests is always a real database: SQLite by default, a
// real Postgres (pgtest) where concurrency or Postgres behaviour matters.
// "The database is down" is a real store that has been closed.

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const testIssuer = "https://idp.example"

// testSuccessorKey is the fixed 32-byte refresh token successor key of
// test servers; production derives it from the KEK.
var testSuccessorKey = bytes.Repeat([]byte{0x5a}, 32)

// newStore returns a fresh, migrated, empty SQLite database of the
// test's own.
func newStore(t *testing.T) *sqlite.DB {
	t.Helper()
	return sqlitetest.NewStore(t)
}

// reopen returns a second handle on db's file, closed when the test ends.
// A test closes the handle the server uses to take the database away from
// it, and reads back through this one.
func reopen(t *testing.T, db *sqlite.DB) *sqlite.DB {
	t.Helper()
	other, err := sqlite.Open(t.Context(), db.Path())
	if err != nil {
		t.Fatalf("reopen %s: %v", db.Path(), err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// closedStore returns a real, migrated store that has been closed: every
// call fails, as it does when the database is down.
func closedStore(t *testing.T) *sqlite.DB {
	t.Helper()
	db := newStore(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return db
}

// rawSQL opens a plain database/sql handle on a SQLite store's file, for
// what the storage interface deliberately cannot do (delete a user, count
// rows). Foreign keys are on, as in the backend.
func rawSQL(t *testing.T, db *sqlite.DB) *sql.DB {
	t.Helper()
	u := url.URL{Scheme: "file", Path: db.Path(), RawQuery: "_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)"}
	raw, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// execSQL runs a statement without arguments directly against st's
// database, SQLite or Postgres.
func execSQL(t *testing.T, st storage.Store, query string) {
	t.Helper()
	var err error
	switch db := st.(type) {
	case *sqlite.DB:
		_, err = rawSQL(t, db).ExecContext(t.Context(), query)
	case *postgres.DB:
		_, err = db.Pool().Exec(t.Context(), query)
	default:
		t.Fatalf("execSQL: unknown store %T", st)
	}
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// countRows returns how many rows a SQLite table holds.
func countRows(t *testing.T, db *sqlite.DB, table string) int {
	t.Helper()
	var n int
	if err := rawSQL(t, db).QueryRowContext(t.Context(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// readOnlyURL returns a Postgres connection string whose sessions refuse
// every write (default_transaction_read_only), as a connection to a hot
// standby does: reads work, writes fail.
func readOnlyURL(t *testing.T, dbURL string) string {
	t.Helper()
	if u, err := url.Parse(dbURL); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("default_transaction_read_only", "on")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dbURL + " default_transaction_read_only=on"
}

// openPostgres opens a handle on a pgtest database, closed when the test
// ends (before pgtest drops the database).
func openPostgres(t *testing.T, dbURL string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func createClients(t *testing.T, st storage.ClientStore, cs ...storage.Client) {
	t.Helper()
	for _, c := range cs {
		c.CreatedAt, c.UpdatedAt = testNow.Add(-time.Hour), testNow.Add(-time.Hour)
		if err := st.CreateClient(t.Context(), c); err != nil {
			t.Fatalf("create client %s: %v", c.ID, err)
		}
	}
}

// createUsers stores users; an empty Email becomes <id>@example.test
// (emails are unique).
func createUsers(t *testing.T, st storage.UserStore, us ...storage.User) {
	t.Helper()
	for _, u := range us {
		if u.Email == "" {
			u.Email = u.ID + "@example.test"
		}
		u.CreatedAt, u.UpdatedAt = testNow.Add(-time.Hour), testNow.Add(-time.Hour)
		if err := st.CreateUser(t.Context(), u); err != nil {
			t.Fatalf("create user %s: %v", u.ID, err)
		}
	}
}

// testSigningKey is made once per test binary: RSA key generation costs
// tens of milliseconds, several times that under -race, and a KeyPair is
// never modified. Each test stores it in its own database, encrypted under
// its own key-encryption key.
var testSigningKey = sync.OnceValues(func() (*keys.KeyPair, error) {
	return keys.Generate(keys.RS256, rand.Reader)
})

// newKeys returns a real keys.Manager over st with one active RS256 key.
func newKeys(t *testing.T, st storage.SigningKeyStore) *keys.Manager {
	t.Helper()
	kek, err := keys.GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := testSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	row, err := k.Record(kek, storage.KeyActive, testNow.Add(-time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSigningKey(t.Context(), row); err != nil {
		t.Fatalf("store signing key: %v", err)
	}
	m := keys.NewManager(st, kek, keys.Options{
		Now:    func() time.Time { return testNow },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// keyIDTokens mints a small ID token with the real signing key, standing
// in for package oidc (which imports this package, so cannot be used
// here). It remembers the requests it was given.
type keyIDTokens struct {
	keys *keys.Manager

	mu       sync.Mutex
	requests []IDTokenRequest
}

func (k *keyIDTokens) MintIDToken(_ context.Context, r IDTokenRequest) (string, error) {
	k.mu.Lock()
	k.requests = append(k.requests, r)
	k.mu.Unlock()
	return k.keys.Sign(keys.RS256, "JWT", map[string]any{
		"iss":   testIssuer,
		"sub":   r.User.ID,
		"aud":   r.Client.ID,
		"nonce": r.Nonce,
		"sid":   r.SessionID,
		"iat":   jwt.NewNumericDate(testNow),
		"exp":   jwt.NewNumericDate(testNow.Add(time.Hour)),
	})
}

func (k *keyIDTokens) last() (IDTokenRequest, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.requests) == 0 {
		return IDTokenRequest{}, 0
	}
	return k.requests[len(k.requests)-1], len(k.requests)
}

// hookIDTokens runs during once, the first time an ID token is asked for:
// that is after the code was read and checked and before it is redeemed,
// the window in which another request or an outage can intervene.
type hookIDTokens struct {
	IDTokenMinter
	during func(ctx context.Context)
	ran    atomic.Bool
}

func (h *hookIDTokens) MintIDToken(ctx context.Context, r IDTokenRequest) (string, error) {
	if h.ran.CompareAndSwap(false, true) {
		h.during(ctx)
	}
	return h.IDTokenMinter.MintIDToken(ctx, r)
}

// newTestServer returns a server for tests. Unset dependencies get: a
// fresh SQLite store, a real keys.Manager over it as signer and verifier
// (or for whichever of the two is unset), real-key ID tokens, a clock
// stopped at testNow, a deterministic random source, a real
// session.Manager over the same store and clock, and testSuccessorKey.
func newTestServer(t *testing.T, cfg Config, deps Deps) *Server {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if deps.Store == nil {
		deps.Store = newStore(t)
	}
	// One Manager per database: a second would store a second active key.
	m, _ := deps.Signer.(*keys.Manager)
	manager := func() *keys.Manager {
		if m == nil {
			m = newKeys(t, deps.Store)
		}
		return m
	}
	if deps.Signer == nil {
		deps.Signer = manager()
	}
	if deps.Verifier == nil {
		deps.Verifier = manager()
	}
	if deps.IDTokens == nil {
		deps.IDTokens = &keyIDTokens{keys: manager()}
	}
	if deps.Now == nil {
		deps.Now = func() time.Time { return testNow }
	}
	if deps.Rand == nil {
		deps.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 1<<12))
	}
	if deps.Sessions == nil {
		deps.Sessions = session.NewManager(deps.Store, session.Config{}, session.Options{Now: deps.Now})
	}
	if deps.SuccessorKey == nil {
		deps.SuccessorKey = testSuccessorKey
	}
	s, err := NewServer(cfg, deps)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return s
}

// wantUnavailable checks that e is temporarily_unavailable (503) with its
// cause kept for the log and out of the description.
func wantUnavailable(t *testing.T, e *Error) {
	t.Helper()
	wantError(t, e, "temporarily_unavailable", 503)
	if e.Cause == nil {
		t.Errorf("%s has no cause to log", e.Code)
	} else if strings.Contains(e.Description, e.Cause.Error()) || strings.Contains(e.Description, "closed") {
		t.Errorf("description %q leaks the cause %v", e.Description, e.Cause)
	}
}

// clock is a settable test clock, safe for concurrent use: tests advance
// it instead of sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// createSession stores a live login session of user, last seen at
// lastSeen and ending (absolutely) a week after it.
func createSession(t *testing.T, st storage.SessionStore, id, userID string, lastSeen time.Time) {
	t.Helper()
	err := st.CreateSession(t.Context(), storage.Session{
		ID: id, SecretHash: secrets.Hash("cookie-" + id), UserID: userID,
		AuthTime: lastSeen, AMR: []string{"pwd"}, CreatedAt: lastSeen, LastSeenAt: lastSeen,
		ExpiresAt: lastSeen.Add(7 * 24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("create session %s: %v", id, err)
	}
}

// createGrant stores g, and the tokens in issued, the one way storage
// allows: by redeeming an authorization code issued for it.
func createGrant(t *testing.T, st storage.Store, g storage.Grant, issued storage.IssuedTokens) {
	t.Helper()
	if g.CreatedAt.IsZero() {
		g.CreatedAt = testNow.Add(-time.Minute)
	}
	code := storage.AuthCode{
		CodeHash: secrets.Hash("code-of-" + g.ID), ClientID: g.ClientID, UserID: g.UserID, SessionID: g.SessionID,
		GrantID: g.ID, RedirectURI: "https://client.example/cb", Scopes: g.Scopes,
		AuthTime: g.CreatedAt, CreatedAt: g.CreatedAt, ExpiresAt: g.CreatedAt.Add(time.Minute),
	}
	if err := st.CreateAuthCode(t.Context(), code); err != nil {
		t.Fatalf("create code for grant %s: %v", g.ID, err)
	}
	if _, err := st.RedeemAuthCode(t.Context(), code.CodeHash, g.CreatedAt, g, issued); err != nil {
		t.Fatalf("redeem code for grant %s: %v", g.ID, err)
	}
}

// bearer presents token to s as a resource would (userinfo).
func bearer(t *testing.T, s *Server, token string) (TokenInfo, *Error) {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/userinfo", nil)
	return s.ValidateBearer(r, token)
}
