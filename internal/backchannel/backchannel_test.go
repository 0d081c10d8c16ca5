package backchannel_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-idp/gatehouse/internal/backchannel"
	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

const issuer = "https://idp.example"

// clock is a fake clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newKeys returns a key manager with an active RS256 key over store.
func newKeys(t *testing.T, store storage.Store, now func() time.Time) *keys.Manager {
	t.Helper()
	kek, err := keys.GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	km := keys.NewManager(store, kek, keys.Options{Now: now, Logger: slog.New(slog.DiscardHandler)})
	if err := km.Init(t.Context()); err != nil {
		t.Fatalf("keys Init: %v", err)
	}
	return km
}

// verify checks tok's signature against the published JWKS, as a
// receiver would, and returns its protected header and claims.
func verify(t *testing.T, km *keys.Manager, tok string) (jose.Header, map[string]any) {
	t.Helper()
	body, _ := km.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse logout token: %v", err)
	}
	h := jws.Signatures[0].Protected
	found := set.Key(h.KeyID)
	if len(found) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS, want 1", h.KeyID, len(found))
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		t.Fatalf("verify logout token against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return h, claims
}

func TestNewToken(t *testing.T) {
	store := sqlitetest.NewStore(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	km := newKeys(t, store, func() time.Time { return now })
	req := backchannel.TokenRequest{
		Issuer: issuer, ClientID: "app-1", Subject: "user-1", SessionID: "sid-1",
		Now: now, TTL: 2 * time.Minute,
	}
	tok, err := backchannel.NewToken(km, "RS256", rand.Reader, req)
	if err != nil {
		t.Fatal(err)
	}
	h, claims := verify(t, km, tok)
	if typ := h.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("typ = %v, want logout+jwt", typ)
	}
	if h.Algorithm != "RS256" {
		t.Errorf("alg = %s, want RS256", h.Algorithm)
	}
	// §2.4: exactly these claims; above all no nonce.
	wantKeys := []string{"aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"}
	if got := slices.Sorted(maps.Keys(claims)); !slices.Equal(got, wantKeys) {
		t.Errorf("claims %v, want %v", got, wantKeys)
	}
	if _, ok := claims["nonce"]; ok {
		t.Error("logout token has a nonce (§2.4 forbids it)")
	}
	for k, want := range map[string]any{
		"iss": issuer, "aud": "app-1", "sub": "user-1", "sid": "sid-1",
		"iat": float64(now.Unix()), "exp": float64(now.Add(2 * time.Minute).Unix()),
	} {
		if claims[k] != want {
			t.Errorf("%s = %v (%T), want %v", k, claims[k], claims[k], want)
		}
	}
	events, _ := claims["events"].(map[string]any)
	if ev, ok := events[backchannel.EventLogout].(map[string]any); !ok || len(ev) != 0 || len(events) != 1 {
		t.Errorf("events = %v, want {%q: {}}", claims["events"], backchannel.EventLogout)
	}
	if jti, _ := claims["jti"].(string); len(jti) < 20 {
		t.Errorf("jti = %q, want a random identifier", jti)
	}
	other, err := backchannel.NewToken(km, "RS256", rand.Reader, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, c2 := verify(t, km, other); c2["jti"] == claims["jti"] {
		t.Error("two logout tokens share a jti")
	}
}

// receiver is a client's back-channel logout endpoint answering with the
// statuses in turn (the last one repeats).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	tokens   []string
	got      chan string
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses, got: make(chan string, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("receiver got %s with Content-Type %q", req.Method, req.Header.Get("Content-Type"))
		}
		tok := req.PostFormValue("logout_token")
		r.mu.Lock()
		st := r.statuses[min(len(r.tokens), len(r.statuses)-1)]
		r.tokens = append(r.tokens, tok)
		r.mu.Unlock()
		if st == http.StatusFound {
			http.Redirect(w, req, "/elsewhere", st)
		} else {
			w.WriteHeader(st)
		}
		select {
		case r.got <- tok:
		default: // nobody is looking at every token
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tokens)
}

// fixture is a store with one ended session of u1 in which client c1
// (back-channel URI uri) took part: one queued logout.
type fixture struct {
	store storage.Store
	clk   *clock
	km    *keys.Manager
	d     *backchannel.Deliverer
}

func newFixture(t *testing.T, uri string) fixture {
	t.Helper()
	ctx := t.Context()
	store := sqlitetest.NewStore(t)
	clk := &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	now := clk.Now()
	must(t, store.CreateUser(ctx, storage.User{ID: "u1", Email: "u1@example.com", CreatedAt: now, UpdatedAt: now}))
	must(t, store.CreateClient(ctx, storage.Client{ID: "c1", Metadata: storage.ClientMetadata{BackchannelLogoutURI: uri}, CreatedAt: now, UpdatedAt: now}))
	must(t, store.CreateSession(ctx, storage.Session{ID: "s1", SecretHash: []byte("h"), UserID: "u1", AuthTime: now, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))
	code := storage.AuthCode{CodeHash: []byte("code"), ClientID: "c1", UserID: "u1", SessionID: "s1", GrantID: "g1", RedirectURI: "https://c1.example/cb", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	must(t, store.CreateAuthCode(ctx, code))
	_, err := store.RedeemAuthCode(ctx, code.CodeHash, now, storage.Grant{ID: "g1", UserID: "u1", ClientID: "c1", SessionID: "s1", CreatedAt: now}, storage.IssuedTokens{})
	must(t, err)
	must(t, store.EndSession(ctx, "s1", now))
	km := newKeys(t, store, clk.Now)
	d, err := backchannel.New(backchannel.Config{Issuer: issuer}, backchannel.Deps{
		Store: store, Clients: store, Signer: km, Now: clk.Now,
	})
	must(t, err)
	return fixture{store: store, clk: clk, km: km, d: d}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (f fixture) row(t *testing.T) storage.BackchannelLogout {
	t.Helper()
	rows, err := f.store.ListBackchannelLogouts(t.Context())
	must(t, err)
	if len(rows) != 1 {
		t.Fatalf("%d outbox rows, want 1", len(rows))
	}
	return rows[0]
}

func (f fixture) deliver(t *testing.T, want int) {
	t.Helper()
	n, err := f.d.DeliverDue(t.Context())
	must(t, err)
	if n != want {
		t.Fatalf("DeliverDue attempted %d rows, want %d", n, want)
	}
}

func TestDeliverOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		delivered bool
	}{
		{"200 is delivered", http.StatusOK, true},
		{"204 is delivered", http.StatusNoContent, true},
		{"400 is retried", http.StatusBadRequest, false},
		{"500 is retried", http.StatusInternalServerError, false},
		{"a redirect is not followed, and retried", http.StatusFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.status)
			f := newFixture(t, rcv.URL+"/bc")
			f.deliver(t, 1)
			if rcv.count() != 1 {
				t.Fatalf("receiver got %d requests, want 1 (redirects not followed)", rcv.count())
			}
			h, claims := verify(t, f.km, <-rcv.got)
			if h.ExtraHeaders[jose.HeaderType] != "logout+jwt" || claims["sid"] != "s1" || claims["sub"] != "u1" || claims["aud"] != "c1" {
				t.Errorf("token header %v claims %v", h.ExtraHeaders, claims)
			}
			row := f.row(t)
			now := f.clk.Now()
			if tt.delivered {
				if row.DeliveredAt == nil || !row.DeliveredAt.Equal(now) || row.LastError != "" {
					t.Errorf("row = %+v, want delivered at %s", row, now)
				}
				f.deliver(t, 0) // nothing left
				return
			}
			if row.DeliveredAt != nil || row.FailedAt != nil || !row.NextAttemptAt.Equal(now.Add(10*time.Second)) ||
				!strings.Contains(row.LastError, "HTTP") {
				t.Errorf("row = %+v, want a retry at +10s with the status as error", row)
			}
			f.deliver(t, 0) // not due before the backoff
		})
	}
}

func TestRetriesWithBackoffThenGivesUp(t *testing.T) {
	rcv := newReceiver(t, http.StatusServiceUnavailable)
	f := newFixture(t, rcv.URL+"/bc")
	created := f.clk.Now()
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		f.deliver(t, 1)
		row := f.row(t)
		if row.Attempts != attempt {
			t.Fatalf("attempts = %d, want %d", row.Attempts, attempt)
		}
		if row.FailedAt != nil {
			if f.clk.Now().Sub(created) < 24*time.Hour {
				t.Fatalf("gave up after %s, want 24h", f.clk.Now().Sub(created))
			}
			if !strings.Contains(row.LastError, "503") {
				t.Errorf("last error %q, want the status", row.LastError)
			}
			break
		}
		want := time.Hour
		if attempt <= 9 {
			want = min(10*time.Second<<(attempt-1), time.Hour)
		}
		if got := row.NextAttemptAt.Sub(f.clk.Now()); got != want {
			t.Fatalf("attempt %d: next attempt in %s, want %s", attempt, got, want)
		}
		f.clk.Advance(want - time.Second)
		f.deliver(t, 0) // a second early: not due
		f.clk.Advance(time.Second)
		waited += want
		if attempt > 100 {
			t.Fatal("never gave up")
		}
	}
	f.deliver(t, 0) // failed rows are never claimed again
	if n := rcv.count(); n < 30 || n > 40 {
		t.Errorf("%d attempts in 24 h, want about 33 (10s, 20s, ... then hourly)", n)
	}
}

func TestDeletedClientLeavesNothingToSend(t *testing.T) {
	f := newFixture(t, "https://c1.example/bc")
	// The URI went away after the session ended (the outbox row was
	// queued while it was there).
	must(t, f.store.DeleteClient(t.Context(), "c1"))
	now := f.clk.Now()
	must(t, f.store.CreateClient(t.Context(), storage.Client{ID: "c1", CreatedAt: now, UpdatedAt: now}))
	rows, err := f.store.ListBackchannelLogouts(t.Context())
	must(t, err)
	if len(rows) != 0 {
		t.Fatalf("deleting the client left %d outbox rows", len(rows))
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	rcv := newReceiver(t, http.StatusOK)
	f := newFixture(t, rcv.URL+"/bc")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.d.Run(ctx); close(done) }()
	// Run delivers what is queued at start without being woken.
	select {
	case <-rcv.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery at start")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
