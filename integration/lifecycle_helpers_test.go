package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
)

// Helpers shared by the machine token, revocation, introspection, user
// and pool tests.

// machineMetadata is a confidential machine client: client_credentials
// only, two API scopes and one resource it may name as audience.
const machineMetadata = `"grant_types":["client_credentials"],"scope":"invoices:read invoices:write","allowed_resources":["https://api.example.com"]`

// machine is a registered client_credentials client.
type machine struct {
	ID, Secret string
}

// newMachine registers a machine client; extra is spliced into the
// metadata (e.g. `"access_token_format":"opaque"`).
func (s *testServer) newMachine(t testing.TB, name, extra string) machine {
	t.Helper()
	md := `{"client_name":"` + name + `",` + machineMetadata
	if extra != "" {
		md += "," + extra
	}
	id, secret := s.registerClient(t, md+"}")
	return machine{ID: id, Secret: secret}
}

// config is the x/oauth2 client_credentials configuration a machine uses.
func (m machine) config(s *testServer, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     m.ID,
		ClientSecret: m.Secret,
		TokenURL:     s.URL + "/token",
		Scopes:       scopes,
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
}

// token gets a machine token through x/oauth2 and fails the test if it
// cannot.
func (m machine) token(t testing.TB, s *testServer, scopes ...string) *oauth2.Token {
	t.Helper()
	tok, err := m.config(s, scopes...).Token(t.Context())
	if err != nil {
		t.Fatalf("client_credentials for %s: %v", m.ID, err)
	}
	return tok
}

// asApp lets a machine call the endpoints that take app credentials
// (introspection, revocation).
func (m machine) asApp() app { return app{ID: m.ID, Secret: m.Secret} }

// introspectRaw posts to /introspect as rs and returns the response as is.
func (s *testServer) introspectRaw(t testing.TB, rs app, token string) rawResponse {
	t.Helper()
	return postForm(t, s.URL+"/introspect", url.Values{"token": {token}}, rs.ID, rs.Secret)
}

// assertInactive checks that token introspects as exactly {"active":false}:
// RFC 7662 §2.2 — nothing else may be said about an inactive token.
func (s *testServer) assertInactive(t testing.TB, rs app, what, token string) {
	t.Helper()
	r := s.introspectRaw(t, rs, token)
	if r.Status != http.StatusOK || strings.TrimSpace(r.Body) != `{"active":false}` {
		t.Errorf("%s: introspection %d %s, want 200 {\"active\":false}", what, r.Status, r.Body)
	}
}

// revoke posts token to /revoke as a and returns the response.
func (s *testServer) revoke(t testing.TB, a app, token string) rawResponse {
	t.Helper()
	return postForm(t, s.URL+"/revoke", url.Values{"token": {token}}, a.ID, a.Secret)
}

// tokenFields are the members of a token endpoint response.
type tokenFields struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token"`
}

// verifyLocally is what a resource server does with a JWT access token
// without asking Gatehouse: check the signature against the JWKS, the typ
// and the expiry. It returns the payload, or an error.
func verifyLocally(ctx context.Context, s *testServer, token string) (map[string]any, error) {
	payload, err := oidc.NewRemoteKeySet(ctx, s.Issuer+"/jwks").VerifySignature(ctx, token)
	if err != nil {
		return nil, err
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	exp, _ := c["exp"].(float64)
	if !s.Clock.Now().Before(time.Unix(int64(exp), 0)) {
		return nil, fmt.Errorf("expired at %v", time.Unix(int64(exp), 0))
	}
	return c, nil
}

// audience reads an aud claim or member, which may be a string or an
// array (RFC 7519 §4.1.3).
func audience(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// watchedStore is the server's store with a window on the client cache:
// it counts the calls to ClientsVersion, which only the cache makes, once
// per refresh, and can hold them back. Otherwise it changes nothing about
// the calls, and Close closes the real store: the *postgres.DB the server
// uses.
type watchedStore struct {
	storage.Store
	mu      sync.Mutex
	started int           // ClientsVersion calls begun
	held    int           // of those, how many are waiting at the gate
	gate    chan struct{} // non-nil: calls wait until it is closed
	changed chan struct{} // closed and replaced whenever started or held moves
}

func newWatchedStore(inner storage.Store) *watchedStore {
	return &watchedStore{Store: inner, changed: make(chan struct{})}
}

func (w *watchedStore) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *watchedStore) ClientsVersion(ctx context.Context) (int64, error) {
	w.mu.Lock()
	w.started++
	gate := w.gate
	if gate != nil {
		w.held++
	}
	w.notify()
	w.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return w.Store.ClientsVersion(ctx)
}

// waitFor blocks until cond (called with w.mu held) is true. It waits on
// the cache's own ticks, never on a guessed sleep; the deadline only
// catches a cache that has stopped refreshing.
func (w *watchedStore) waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		ok, ch := cond(), w.changed
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("the client cache did not %s within 10 s", what)
		}
	}
}

// waitCacheRefreshed blocks until every client cache over w has applied a
// version read after this call began. The cache's Run loop refreshes one
// refresh after another, so once two refreshes have started since now,
// the first of them read the version after now and its flush is done.
func (w *watchedStore) waitCacheRefreshed(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	target := w.started + 2
	w.mu.Unlock()
	w.waitFor(t, "refresh", func() bool { return w.started >= target })
}

// holdRefreshes stops the cache from refreshing, and returns once its Run
// loop is parked at the gate: every refresh before has finished, and none
// can read the database until releaseRefreshes.
func (w *watchedStore) holdRefreshes(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	w.gate = make(chan struct{})
	w.mu.Unlock()
	w.waitFor(t, "reach the gate", func() bool { return w.held > 0 })
}

func (w *watchedStore) releaseRefreshes() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gate != nil {
		close(w.gate)
		w.gate = nil
	}
}

// cacheInterval is the ClientCacheInterval of servers built with
// newWatchedServer: short, so that waiting for a refresh is quick.
const cacheInterval = 20 * time.Millisecond

// newWatchedServer starts a server on a fresh database with a short
// client cache interval, and returns it with its watched store.
func newWatchedServer(t testing.TB, opts ...func(*server.Config)) (*testServer, *watchedStore) {
	t.Helper()
	w := newWatchedStore(pgtest.NewStore(t))
	opts = append([]func(*server.Config){func(c *server.Config) { c.ClientCacheInterval = cacheInterval }}, opts...)
	return newTestServerOn(t, w, opts...), w
}

// openStore opens a handle on the database at dbURL, closed when the test
// ends.
func openStore(t testing.TB, dbURL string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// httpPost posts a form without a testing.TB, for goroutines: it returns
// the status and body, or an error.
func httpPost(ctx context.Context, c *http.Client, endpoint string, form url.Values, id, secret string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
