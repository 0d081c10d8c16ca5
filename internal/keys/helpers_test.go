package keys_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"iter"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

// backends are the real storage engines every Manager test runs against.
var backends = []struct {
	name string
	open func(t *testing.T) storage.Store
}{
	{"sqlite", func(t *testing.T) storage.Store { return openSQLite(t) }},
	{"postgres", openPostgres},
}

func openSQLite(t testing.TB) storage.Store {
	t.Helper()
	return sqlitetest.NewStore(t)
}

func openPostgres(t *testing.T) storage.Store {
	t.Helper()
	return pgtest.NewStore(t)
}

// forEachBackend runs f as a subtest per storage engine.
func forEachBackend(t *testing.T, f func(t *testing.T, store storage.Store)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.open(t)) })
	}
}

// clock is a fake clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
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

func newKEK(t testing.TB) keys.KEK {
	t.Helper()
	k, err := keys.GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newManager(t testing.TB, store storage.SigningKeyStore, kek keys.KEK, clk *clock) *keys.Manager {
	t.Helper()
	return keys.NewManager(store, kek, keys.Options{
		Now:    clk.Now,
		Logger: testLogger(t),
		// The older tests place keys by hand; with RS256 alone, Init
		// leaves the other algorithms to them. The lifecycle tests set
		// their own policy.
		Policy: keys.Policy{Algorithms: []string{keys.RS256}},
	})
}

// addKey generates a key for alg and stores it in state, created at
// createdAt. It returns the key so tests can sign with it directly.
func addKey(t testing.TB, store storage.SigningKeyStore, kek keys.KEK, alg string, state storage.KeyState, createdAt time.Time) *keys.KeyPair {
	t.Helper()
	k, err := keys.Generate(alg, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	row, err := k.Record(kek, state, createdAt, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if state == storage.KeyRetired {
		row.RetiredAt = &createdAt
	}
	if err := store.CreateSigningKey(t.Context(), row); err != nil {
		t.Fatalf("store %s %s key: %v", state, alg, err)
	}
	return k
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

func listKeys(t testing.TB, store storage.SigningKeyStore) []storage.SigningKey {
	t.Helper()
	rows, err := store.ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func describe(rows []storage.SigningKey) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Algorithm+" "+string(r.State)+" "+r.ID)
	}
	return out
}

// decodeHeader returns the protected header of a compact JWS, unverified.
func decodeHeader(t testing.TB, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.SplitN(token, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// signWith signs claims with k's private key directly, bypassing the
// Manager, with whatever alg and kid the test claims.
func signWith(t testing.TB, k *keys.KeyPair, alg jose.SignatureAlgorithm, kid, typ string, claims any) string {
	t.Helper()
	key := any(keys.PrivateKeyForTest(k))
	if kid != "" {
		key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// rawToken assembles a compact JWS from a header, an encoded payload and
// signature bytes, with no checks at all.
func rawToken(header map[string]any, payloadB64 string, sig []byte) string {
	h, err := json.Marshal(header)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + payloadB64 + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// hmacToken is the key-confusion attack: an HS256 token whose HMAC secret
// is something public, such as the verification key's bytes.
func hmacToken(kid, payloadB64 string, secret []byte) string {
	h, _ := json.Marshal(map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"})
	signingInput := base64.RawURLEncoding.EncodeToString(h) + "." + payloadB64
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signingInput))
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// findJWK returns the published JWK with this kid, as bytes.
func findJWK(t testing.TB, m *keys.Manager, kid string) []byte {
	t.Helper()
	body, _ := m.JWKS()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range doc.Keys {
		var v struct {
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal(k, &v); err == nil && v.Kid == kid {
			return k
		}
	}
	t.Fatalf("kid %s not in JWKS", kid)
	return nil
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mapKeys[V any](m map[string]V) iter.Seq[string] {
	return maps.Keys(m)
}

// waitFor waits until cond holds, for things a background goroutine does;
// it is not a way to wait for time to pass (tests move the fake clock).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
