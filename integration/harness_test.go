package integration

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// clock is a settable clock shared by the server and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testServer is one Gatehouse on its own port. Replicas share a database,
// KEK, clock and issuer, as instances behind a load balancer do; URL is
// where this one listens.
type testServer struct {
	Issuer string
	URL    string
	Store  storage.Store
	Clock  *clock
	Server *server.Server
	users  *users.Service
	reg    *clients.Service
	kek    keys.KEK
	opts   []func(*server.Config)
	stop   func()
	// dbClosed is set by closeDatabase: audit events the server could
	// not write at shutdown are then expected, not a failure.
	dbClosed *atomic.Bool
}

// newTestServer starts a fresh server on a fresh Postgres database. The
// server stops and the database is dropped when the test ends.
func newTestServer(t testing.TB, opts ...func(*server.Config)) *testServer {
	t.Helper()
	return newTestServerOn(t, pgtest.NewStore(t), opts...)
}

// newTestServerOn starts a server over an existing store.
func newTestServerOn(t testing.TB, store storage.Store, opts ...func(*server.Config)) *testServer {
	t.Helper()
	kek, err := keys.GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return startServer(t, store, kek, newClock(), "", opts)
}

// replica starts another instance of s: same database, KEK, clock and
// issuer, its own port.
func (s *testServer) replica(t testing.TB) *testServer {
	t.Helper()
	return startServer(t, s.Store, s.kek, s.Clock, s.Issuer, s.opts)
}

func startServer(t testing.TB, store storage.Store, kek keys.KEK, clk *clock, issuer string, opts []func(*server.Config)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	// A short shutdown: tests that take the database away wait this long
	// for the audit trail's last writes before the server gives up.
	cfg := server.Config{Issuer: url, Listen: ln.Addr().String(), ShutdownTimeout: 3 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if issuer != "" {
		cfg.Issuer = issuer
	} else if strings.HasPrefix(cfg.Issuer, url) {
		url = cfg.Issuer // an issuer with a path
	}
	srv, err := server.New(t.Context(), cfg, server.Deps{Store: store, KEK: kek, Now: clk.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, nil) }()
	var once sync.Once
	dbClosed := new(atomic.Bool)
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !(dbClosed.Load() && errors.Is(err, audit.ErrUnwritten)) {
				t.Errorf("server stopped with error: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testServer{
		Issuer: cfg.Issuer,
		URL:    url,
		Store:  store,
		Clock:  clk,
		Server: srv,
		// Cheap argon2 parameters for creating test users; verification
		// reads the parameters from the stored hash.
		users:    users.New(store, users.Options{Now: clk.Now, Params: users.Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}),
		reg:      clients.New(store, clients.Options{Now: clk.Now}),
		kek:      kek,
		opts:     opts,
		stop:     stop,
		dbClosed: dbClosed,
	}
}

// closeDatabase closes the server's store under it, as a database outage
// would. The audit events the server then cannot write are logged at
// shutdown instead, which the harness accepts.
func (s *testServer) closeDatabase() error {
	s.dbClosed.Store(true)
	return s.Store.Close()
}

// Stop shuts the server down gracefully now, as a restart would.
func (s *testServer) Stop() { s.stop() }

// testLogger sends server logs to the test log when -v is given, and
// nowhere otherwise, so failures stay readable.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() || os.Getenv("GATEHOUSE_TEST_LOGS") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// createUser adds a person who can sign in.
func (s *testServer) createUser(t testing.TB, email, password string) storage.User {
	t.Helper()
	u, err := s.users.Create(t.Context(), users.CreateUser{Email: email, Name: "Test " + email, Password: password})
	if err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// registerClient registers a client from metadata JSON and returns its id
// and secret (empty for public clients).
func (s *testServer) registerClient(t testing.TB, metadata string) (id, secret string) {
	t.Helper()
	md, err := clients.ParseMetadata(strings.NewReader(metadata))
	if err != nil {
		t.Fatalf("parse client metadata: %v", err)
	}
	reg, err := s.reg.Register(t.Context(), md)
	if err != nil {
		t.Fatalf("register client: %v", err)
	}
	return reg.Client.ID, reg.Secret
}

// browser is a person's browser: a cookie jar, and redirects followed by
// hand so the test sees each hop and stops at the app's redirect URI.
type browser struct {
	t      testing.TB
	c      *http.Client
	lang   string
	ua     string // User-Agent; Go's default when empty
	issuer string
}

func newBrowser(t testing.TB, issuer string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, issuer: issuer, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

// page is a response the browser stopped at.
type page struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	if b.ua != "" {
		req.Header.Set("User-Agent", b.ua)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		// A message key the catalog lacks renders as the key itself.
		if m := rawKeyRE.FindString(string(body)); m != "" {
			b.t.Errorf("%s %s: page shows an untranslated message key %q", req.Method, req.URL.Path, strings.Trim(m, "<> \n"))
		}
	}
	return &page{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// rawKeyRE matches catalog keys (error.expired.title, login.submit, ...)
// standing as text in a page.
var rawKeyRE = regexp.MustCompile(`[>\s](app|error|login|consent|scope|home|account|logout|signed_out)\.[a-z_]+(\.[a-z_]+)*\s*<`)

// origin is the scheme and host of the issuer: redirects within it stay in
// the IdP.
func (b *browser) origin() string {
	u, err := url.Parse(b.issuer)
	if err != nil {
		b.t.Fatal(err)
	}
	return u.Scheme + "://" + u.Host
}

// get fetches one URL without following redirects.
func (b *browser) get(rawURL string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form without following redirects.
func (b *browser) post(rawURL string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// What a browser sends for a same-origin form post.
	req.Header.Set("Origin", b.origin())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

// follow follows redirects from p within the IdP. It stops at a page (a
// non-redirect) or at a redirect leaving the IdP, which it returns as
// callback without fetching it.
func (b *browser) follow(p *page) (final *page, callback *url.URL) {
	b.t.Helper()
	for i := 0; i < 10; i++ {
		if p.Status < 300 || p.Status >= 400 {
			return p, nil
		}
		loc, err := p.URL.Parse(p.Header.Get("Location"))
		if err != nil {
			b.t.Fatalf("bad Location %q: %v", p.Header.Get("Location"), err)
		}
		if !strings.HasPrefix(loc.String(), b.origin()+"/") {
			return p, loc
		}
		p = b.get(loc.String())
	}
	b.t.Fatal("too many redirects")
	return nil, nil
}

// open starts at rawURL and follows redirects.
func (b *browser) open(rawURL string) (*page, *url.URL) {
	b.t.Helper()
	return b.follow(b.get(rawURL))
}

var hiddenRE = regexp.MustCompile(`<input[^>]*type="hidden"[^>]*>`)
var attrRE = regexp.MustCompile(`(name|value)="([^"]*)"`)

// hiddenFields returns a page's hidden form inputs.
func hiddenFields(body string) url.Values {
	v := url.Values{}
	for _, in := range hiddenRE.FindAllString(body, -1) {
		var name, value string
		for _, m := range attrRE.FindAllStringSubmatch(in, -1) {
			if m[1] == "name" {
				name = html.UnescapeString(m[2])
			} else {
				value = html.UnescapeString(m[2])
			}
		}
		if name != "" {
			v.Set(name, value)
		}
	}
	return v
}

// signIn submits the sign-in form on p and follows the redirects.
func (b *browser) signIn(p *page, email, password string) (*page, *url.URL) {
	b.t.Helper()
	if !strings.Contains(p.Body, `name="password"`) {
		b.t.Fatalf("expected the sign-in page, got %d %s:\n%s", p.Status, p.URL, p.Body)
	}
	form := hiddenFields(p.Body)
	form.Set("email", email)
	form.Set("password", password)
	return b.follow(b.post(formAction(b.t, p), form))
}

var actionRE = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)

// formAction is where the page's form posts, resolved like a browser does.
func formAction(t testing.TB, p *page) string {
	t.Helper()
	m := actionRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no form on %s", p.URL)
	}
	u, err := p.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// consent answers the consent form on p ("allow" or "deny").
func (b *browser) consent(p *page, decision string) (*page, *url.URL) {
	b.t.Helper()
	if !strings.Contains(p.Body, `name="decision"`) {
		b.t.Fatalf("expected the consent page, got %d %s:\n%s", p.Status, p.URL, p.Body)
	}
	form := hiddenFields(p.Body)
	form.Set("decision", decision)
	return b.follow(b.post(formAction(b.t, p), form))
}

// tokenError is an RFC 6749 §5.2 error body.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func decodeJSON(t testing.TB, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
