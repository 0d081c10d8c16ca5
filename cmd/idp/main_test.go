package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// result is what one invocation of the CLI printed.
type result struct {
	code           int
	stdout, stderr string
}

// idp runs the CLI in-process with the given stdin and environment.
func idp(t *testing.T, stdin string, environ map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), env{
		args:   args,
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return environ[k] },
	})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// storeArgs are the flags that select each backend for the admin commands.
func storeArgs(t *testing.T) map[string][]string {
	return map[string][]string{
		"sqlite":   {"--data-dir", t.TempDir()},
		"postgres": {"--database-url", pgtest.NewDatabaseURL(t)},
	}
}

func TestUsersCreateAndList(t *testing.T) {
	for backend, sel := range storeArgs(t) {
		t.Run(backend, func(t *testing.T) {
			r := idp(t, "a long enough password\n", nil, append([]string{"users", "create", "--email", " Ada@Example.com ", "--name", "Ada", "--password-stdin"}, sel...)...)
			if r.code != 0 {
				t.Fatalf("users create: exit %d: %s", r.code, r.stderr)
			}
			var u map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &u); err != nil {
				t.Fatalf("users create printed %q: %v", r.stdout, err)
			}
			if u["id"] == "" || u["email"] != "ada@example.com" || u["name"] != "Ada" {
				t.Errorf("created user = %v", u)
			}
			if strings.Contains(r.stdout, "argon2") || strings.Contains(r.stdout, "password") {
				t.Errorf("output reveals the password hash: %s", r.stdout)
			}

			dup := idp(t, "another password\n", nil, append([]string{"users", "create", "--email", "ada@example.com", "--password-stdin"}, sel...)...)
			if dup.code != 1 || !strings.Contains(dup.stderr, "already exists") {
				t.Errorf("duplicate email: exit %d, stderr %q", dup.code, dup.stderr)
			}

			list := idp(t, "", nil, append([]string{"users", "list", "--json"}, sel...)...)
			var all []map[string]any
			if err := json.Unmarshal([]byte(list.stdout), &all); err != nil || len(all) != 1 || all[0]["id"] != u["id"] {
				t.Errorf("users list --json = %q (%v)", list.stdout, err)
			}
			table := idp(t, "", nil, append([]string{"users", "list"}, sel...)...)
			if !strings.Contains(table.stdout, "ada@example.com") {
				t.Errorf("users list = %q", table.stdout)
			}
		})
	}
}

func TestUsersCreateRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no password flag", "pw\n", []string{"--email", "a@example.com"}, 2, "--password-stdin is required"},
		{"empty stdin", "", []string{"--email", "a@example.com", "--password-stdin"}, 2, "no password"},
		{"short password", "short\n", []string{"--email", "a@example.com", "--password-stdin"}, 2, "--password"},
		{"bad email", "long enough password\n", []string{"--email", "not-an-email", "--password-stdin"}, 2, "--email"},
		{"no email", "long enough password\n", []string{"--password-stdin"}, 2, "--email is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := idp(t, tt.stdin, nil, append([]string{"users", "create", "--data-dir", dir}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d stderr %q; want exit %d and %q", r.code, r.stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
	list := idp(t, "", nil, "users", "list", "--json", "--data-dir", dir)
	if strings.TrimSpace(list.stdout) != "[]" {
		t.Errorf("refused creations left users behind: %s", list.stdout)
	}
}

func TestClientsCreateListDelete(t *testing.T) {
	for backend, sel := range storeArgs(t) {
		t.Run(backend, func(t *testing.T) {
			md := `{"client_name":"Ledger","redirect_uris":["https://ledger.example/cb"],"skip_consent":true}`
			r := idp(t, md, nil, append([]string{"clients", "create"}, sel...)...)
			if r.code != 0 {
				t.Fatalf("clients create: exit %d: %s", r.code, r.stderr)
			}
			var reg map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &reg); err != nil {
				t.Fatalf("clients create printed %q: %v", r.stdout, err)
			}
			id, _ := reg["client_id"].(string)
			if id == "" || reg["client_secret"] == nil || reg["token_endpoint_auth_method"] != "client_secret_basic" || reg["skip_consent"] != true {
				t.Errorf("registration response = %v", reg)
			}

			file := filepath.Join(t.TempDir(), "public.json")
			if err := os.WriteFile(file, []byte(`{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"none","application_type":"native"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			pub := idp(t, "", nil, append([]string{"clients", "create", "--file", file}, sel...)...)
			if pub.code != 0 || strings.Contains(pub.stdout, "client_secret") {
				t.Errorf("public client: exit %d stdout %s stderr %s", pub.code, pub.stdout, pub.stderr)
			}

			list := idp(t, "", nil, append([]string{"clients", "list", "--json"}, sel...)...)
			if !strings.Contains(list.stdout, id) || strings.Contains(list.stdout, `"client_secret"`) {
				t.Errorf("clients list = %s", list.stdout)
			}
			del := idp(t, "", nil, append([]string{"clients", "delete", id}, sel...)...)
			if del.code != 0 {
				t.Fatalf("delete: %d %s", del.code, del.stderr)
			}
			again := idp(t, "", nil, append([]string{"clients", "delete", id}, sel...)...)
			if again.code != 1 || !strings.Contains(again.stderr, "no client") {
				t.Errorf("second delete: exit %d %q", again.code, again.stderr)
			}
		})
	}
}

func TestClientsCreateRefusesBadMetadata(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, md, want string }{
		{"not JSON", `{"redirect_uris":`, "invalid_client_metadata"},
		{"fragment", `{"redirect_uris":["https://a.example/cb#x"]}`, "invalid_redirect_uri"},
		{"plain http", `{"redirect_uris":["http://a.example/cb"]}`, "invalid_redirect_uri"},
		{"javascript", `{"redirect_uris":["javascript:alert(1)"]}`, "invalid_redirect_uri"},
		{"unknown grant", `{"redirect_uris":["https://a.example/cb"],"grant_types":["password"]}`, "invalid_client_metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := idp(t, tt.md, nil, "clients", "create", "--data-dir", dir)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d stderr %q, want failure mentioning %q", r.code, r.stderr, tt.want)
			}
		})
	}
	list := idp(t, "", nil, "clients", "list", "--json", "--data-dir", dir)
	if strings.TrimSpace(list.stdout) != "[]" {
		t.Errorf("refused registrations left clients behind: %s", list.stdout)
	}
}

func TestServeConfigurationErrors(t *testing.T) {
	const kek = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	tests := []struct {
		name  string
		env   map[string]string
		args  []string
		wants []string
	}{
		{"nothing set", nil, nil, []string{"--issuer / IDP_ISSUER: is required", "--database-url / IDP_DATABASE_URL: is required", "IDP_KEY_ENCRYPTION_KEY is required"}},
		{"every problem at once", map[string]string{"IDP_KEY_ENCRYPTION_KEY": "c2hvcnQ="},
			[]string{"--issuer", "http://idp.example.com", "--listen", "nope", "--access-token-ttl", "-1s", "--database-url", "postgres://x",
				"--refresh-token-grace", "2m", "--refresh-token-idle-ttl", "100h", "--refresh-token-absolute-ttl", "10h"},
			[]string{"--issuer / IDP_ISSUER", "plain http", "--listen / IDP_LISTEN", "--access-token-ttl / IDP_ACCESS_TOKEN_TTL", "IDP_KEY_ENCRYPTION_KEY:",
				"--refresh-token-grace / IDP_REFRESH_TOKEN_GRACE", "--refresh-token-idle-ttl / IDP_REFRESH_TOKEN_IDLE_TTL: must not exceed"}},
		{"bad environment value is listed with the other problems", map[string]string{"IDP_CODE_TTL": "soon", "IDP_KEY_ENCRYPTION_KEY": kek}, nil,
			[]string{"IDP_CODE_TTL: invalid value", "--issuer / IDP_ISSUER: is required", "--database-url / IDP_DATABASE_URL: is required"}},
		{"signing-key settings", map[string]string{"IDP_KEY_ENCRYPTION_KEY": kek, "IDP_ADDITIONAL_KEY_ENCRYPTION_KEYS": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=,c2hvcnQ="},
			[]string{"--issuer", "https://idp.example.com", "--database-url", "postgres://x", "--signing-algs", "RS256,HS256",
				"--access-token-signing-alg", "EdDSA", "--key-prepublication", "5m", "--key-rotation-period", "1m"},
			[]string{"--signing-algs / IDP_SIGNING_ALGS", `"HS256"`, "--access-token-signing-alg / IDP_ACCESS_TOKEN_SIGNING_ALG", `"EdDSA" is not one of`,
				"--key-prepublication / IDP_KEY_PREPUBLICATION", "JWKS max-age", "--key-rotation-period / IDP_KEY_ROTATION_PERIOD",
				"additional key-encryption key #2"}},
		{"session limit", map[string]string{"IDP_KEY_ENCRYPTION_KEY": kek, "IDP_SESSION_LIMIT_ACTION": "kick"},
			[]string{"--issuer", "https://idp.example.com", "--database-url", "postgres://x", "--max-sessions-per-user", "-1"},
			[]string{"--max-sessions-per-user / IDP_MAX_SESSIONS_PER_USER: must be 0 (unlimited) to 1000",
				`--session-limit-action / IDP_SESSION_LIMIT_ACTION: must be evict_oldest or refuse, not "kick"`}},
		{"sign-in throttle settings", map[string]string{"IDP_KEY_ENCRYPTION_KEY": kek, "IDP_LOGIN_THROTTLE_IP_LIMIT": "many"},
			[]string{"--issuer", "https://idp.example.com", "--database-url", "postgres://x",
				"--login-throttle-lockout", "30s", "--login-throttle-account-limit", "2000000"},
			[]string{"IDP_LOGIN_THROTTLE_IP_LIMIT: invalid value", "--login-throttle-lockout / IDP_LOGIN_THROTTLE_LOCKOUT: must be at least 1m",
				"--login-throttle-account-limit / IDP_LOGIN_THROTTLE_ACCOUNT_LIMIT: must be at most"}},
		{"issuer with trailing slash from env", map[string]string{"IDP_ISSUER": "https://idp.example.com/", "IDP_DATABASE_URL": "postgres://x", "IDP_KEY_ENCRYPTION_KEY": kek}, nil, []string{"--issuer / IDP_ISSUER", "slash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := idp(t, "", tt.env, append([]string{"serve"}, tt.args...)...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			for _, w := range tt.wants {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, "c2hvcnQ") {
				t.Errorf("stderr echoes the key-encryption key: %s", r.stderr)
			}
		})
	}
}

func TestMigrateUpAndStatus(t *testing.T) {
	backends := map[string][]string{
		"sqlite":   {"--data-dir", t.TempDir()},
		"postgres": {"--database-url", pgtest.NewEmptyDatabaseURL(t)},
	}
	for backend, sel := range backends {
		t.Run(backend, func(t *testing.T) {
			st := idp(t, "", nil, append([]string{"migrate", "status"}, sel...)...)
			if st.code != 0 || !strings.Contains(st.stdout, "pending") {
				t.Fatalf("status before up: exit %d stdout %q stderr %q", st.code, st.stdout, st.stderr)
			}
			up := idp(t, "", nil, append([]string{"migrate", "up"}, sel...)...)
			if up.code != 0 || strings.Contains(up.stdout, "pending") || !strings.Contains(up.stdout, "00001") {
				t.Fatalf("up: exit %d stdout %q stderr %q", up.code, up.stdout, up.stderr)
			}
			bad := idp(t, "", nil, append([]string{"migrate", "sideways"}, sel...)...)
			if bad.code != 2 {
				t.Errorf("unknown subcommand: exit %d", bad.code)
			}
		})
	}
}

// lineWatcher is an io.Writer that signals when a marker is written.
type lineWatcher struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	once   sync.Once
}

func newLineWatcher(marker string) *lineWatcher {
	return &lineWatcher{marker: marker, seen: make(chan struct{})}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startServer runs "idp args..." until the test ends and returns once it
// printed marker (the server is listening by then).
func startServer(t *testing.T, environ map[string]string, marker string, args ...string) *lineWatcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := newLineWatcher(marker)
	errOut := newLineWatcher(marker)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, env{args: args, stdin: strings.NewReader(""), stdout: out, stderr: errOut,
			getenv: func(k string) string { return environ[k] }})
	}()
	select {
	case <-out.seen:
	case <-errOut.seen:
	case code := <-done:
		t.Fatalf("idp %v exited %d before starting:\n%s%s", args, code, out, errOut)
	}
	t.Cleanup(func() {
		cancel() // what SIGINT/SIGTERM do through signal.NotifyContext
		if code := <-done; code != 0 {
			t.Errorf("idp %v exited %d after shutdown:\n%s", args, code, errOut)
		}
	})
	return out
}

// TestDevServesAndSeesCLIChanges starts "idp dev" on a fresh data
// directory, checks what it prints and serves, then registers and deletes a
// client with the CLI while it runs: the running server sees both at once.
func TestDevServesAndSeesCLIChanges(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	out := startServer(t, nil, "Discovery:", "dev", "--listen", "127.0.0.1:"+port, "--data-dir", dir)
	issuer := "http://localhost:" + port
	if !strings.Contains(out.String(), issuer+"/.well-known/openid-configuration") {
		t.Errorf("dev did not print the discovery URL:\n%s", out)
	}
	for _, f := range []string{"gatehouse.db", "key-encryption-key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("data dir lacks %s: %v", f, err)
		}
		if f == "key-encryption-key" && fi.Mode().Perm() != 0o600 {
			t.Errorf("key-encryption-key mode %v, want 0600", fi.Mode().Perm())
		}
	}
	var disc struct{ Issuer string }
	getJSON(t, issuer+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != issuer {
		t.Errorf("discovery issuer = %q, want %q", disc.Issuer, issuer)
	}
	if code := getStatus(t, issuer+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz = %d", code)
	}

	reg := idp(t, `{"client_name":"Live","redirect_uris":["https://live.example/cb"]}`, nil, "clients", "create", "--data-dir", dir)
	if reg.code != 0 {
		t.Fatalf("clients create while serving: %d %s", reg.code, reg.stderr)
	}
	var r struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(reg.stdout), &r); err != nil {
		t.Fatal(err)
	}
	authorize := issuer + "/authorize?" + url.Values{
		"client_id": {r.ClientID}, "redirect_uri": {"https://live.example/cb"},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"s"},
	}.Encode()
	if code := getStatus(t, authorize); code != http.StatusFound {
		t.Errorf("authorize for a client created while running: %d, want 302 to sign-in", code)
	}
	if del := idp(t, "", nil, "clients", "delete", r.ClientID, "--data-dir", dir); del.code != 0 {
		t.Fatalf("clients delete: %d %s", del.code, del.stderr)
	}
	if code := getStatus(t, authorize); code != http.StatusBadRequest {
		t.Errorf("authorize for a deleted client: %d, want 400 error page", code)
	}
}

// TestServeOnPostgres starts "idp serve" as an operator would and checks it
// migrates, serves, and sees CLI changes.
func TestServeOnPostgres(t *testing.T) {
	dbURL := pgtest.NewDatabaseURL(t)
	port := freePort(t)
	issuer := "http://127.0.0.1:" + port
	environ := map[string]string{
		"IDP_DATABASE_URL":       dbURL,
		"IDP_ISSUER":             issuer,
		"IDP_LISTEN":             "127.0.0.1:" + port,
		"IDP_KEY_ENCRYPTION_KEY": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
	}
	startServer(t, environ, "listening", "serve")
	if code := getStatus(t, issuer+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d", code)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, issuer+"/jwks", &jwks)
	// Default policy: an active and a pre-published next key for RS256
	// and for ES256.
	algs := map[any]int{}
	for _, k := range jwks.Keys {
		algs[k["alg"]]++
	}
	if len(jwks.Keys) != 4 || algs["RS256"] != 2 || algs["ES256"] != 2 {
		t.Errorf("jwks algs = %v, want 2 RS256 and 2 ES256", algs)
	}
	reg := idp(t, `{"redirect_uris":["https://pg.example/cb"]}`, map[string]string{"IDP_DATABASE_URL": dbURL}, "clients", "create")
	if reg.code != 0 {
		t.Fatalf("clients create via IDP_DATABASE_URL: %d %s", reg.code, reg.stderr)
	}
	var r struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(reg.stdout), &r); err != nil {
		t.Fatal(err)
	}
	authorize := issuer + "/authorize?" + url.Values{
		"client_id": {r.ClientID}, "redirect_uri": {"https://pg.example/cb"},
		"response_type": {"code"}, "scope": {"openid"},
	}.Encode()
	if code := getStatus(t, authorize); code != http.StatusFound {
		t.Errorf("authorize for a client the CLI just created: %d, want 302 to sign-in", code)
	}
}

func getStatus(t *testing.T, u string) int {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", u, err)
	}
}

func TestHelpAndUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"serve", "-h"}, 0, "IDP_"},
		{[]string{"dev", "--help"}, 0, "-data-dir"},
		{[]string{"users", "create", "-h"}, 0, "-password-stdin"},
		{[]string{"users", "create", "-h"}, 0, "-email-verified"},
		{[]string{"users", "set-password", "-h"}, 0, "-password-stdin"},
		{[]string{"users", "disable", "--help"}, 0, "-database-url"},
		{[]string{"help"}, 0, "idp serve"},
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"users"}, 2, "expected one of: create, list"},
		{[]string{"serve", "--no-such-flag"}, 2, "no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := idp(t, "", nil, tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stdout+r.stderr, tt.wantOut) {
				t.Errorf("exit %d, output %q; want exit %d and %q", r.code, r.stdout+r.stderr, tt.wantCode, tt.wantOut)
			}
		})
	}
}
