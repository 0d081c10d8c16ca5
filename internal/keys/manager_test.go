package keys_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func TestInitCreatesActiveAndNextKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		m := newManager(t, store, kek, clk)
		if m.Ready() {
			t.Fatal("Ready before Init")
		}
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !m.Ready() {
			t.Fatal("not Ready after Init")
		}
		if got := m.Algorithms(); !slices.Equal(got, []string{keys.RS256}) {
			t.Errorf("Algorithms() = %v, want [RS256]", got)
		}
		kid, ok := m.ActiveKeyID(keys.RS256)
		if !ok {
			t.Fatal("no active RS256 key id")
		}

		rows := listKeys(t, store)
		if len(rows) != 2 {
			t.Fatalf("%d keys stored (%v), want 2: an active and a next key", len(rows), describe(rows))
		}
		i := slices.IndexFunc(rows, func(r storage.SigningKey) bool { return r.State == storage.KeyActive })
		if i < 0 {
			t.Fatalf("no active key stored: %v", describe(rows))
		}
		r, next := rows[i], rows[1-i]
		if r.ID != kid || r.Algorithm != keys.RS256 {
			t.Errorf("stored key = %s %s %s, want %s RS256 active", r.ID, r.Algorithm, r.State, kid)
		}
		if !r.CreatedAt.Equal(clk.Now()) || r.ActivatedAt == nil || !r.ActivatedAt.Equal(clk.Now()) {
			t.Errorf("stored key created %v activated %v, want both at the injected clock's %v", r.CreatedAt, r.ActivatedAt, clk.Now())
		}
		if next.Algorithm != keys.RS256 || next.State != storage.KeyNext || next.ActivatedAt != nil || !next.CreatedAt.Equal(clk.Now()) {
			t.Errorf("second key = %s %s created %v activated %v, want an RS256 next key created now", next.Algorithm, next.State, next.CreatedAt, next.ActivatedAt)
		}

		// A second Init, and a second instance, reuse the key.
		clk.Advance(time.Hour)
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		m2 := newManager(t, store, kek, clk)
		if err := m2.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		if kid2, _ := m2.ActiveKeyID(keys.RS256); kid2 != kid {
			t.Errorf("second instance uses %s, want %s", kid2, kid)
		}
		if n := len(listKeys(t, store)); n != 2 {
			t.Errorf("%d keys stored after repeated Init, want 2", n)
		}
	})
}

// TestInitConcurrent starts ten instances on one empty database at once,
// as a Deployment rolling out its first replicas would. Every one generates
// a key; storage lets one insert win; all must end up on the winner's key.
func TestInitConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		const n = 10
		managers := make([]*keys.Manager, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			managers[i] = newManager(t, store, kek, clk)
			wg.Go(func() {
				<-start
				errs[i] = managers[i].Init(t.Context())
			})
		}
		close(start)
		wg.Wait()

		for i, err := range errs {
			if err != nil {
				t.Errorf("instance %d: Init: %v", i, err)
			}
		}
		rows := listKeys(t, store)
		var states []string
		active := ""
		for _, r := range rows {
			states = append(states, r.Algorithm+" "+string(r.State))
			if r.State == storage.KeyActive {
				active = r.ID
			}
		}
		slices.Sort(states)
		if !slices.Equal(states, []string{"RS256 active", "RS256 next"}) {
			t.Fatalf("stored keys after concurrent Init: %v, want one active and one next RS256 key", describe(rows))
		}
		body0, etag0 := managers[0].JWKS()
		for i, m := range managers {
			if kid, ok := m.ActiveKeyID(keys.RS256); !ok || kid != active {
				t.Errorf("instance %d signs with %q, want the stored key %s", i, kid, active)
			}
			if body, etag := m.JWKS(); string(body) != string(body0) || etag != etag0 {
				t.Errorf("instance %d serves a different JWKS", i)
			}
		}
	})
}

func TestInitRefusesUnreadableKeys(t *testing.T) {
	store := openSQLite(t)
	clk := newClock()
	if err := newManager(t, store, newKEK(t), clk).Init(t.Context()); err != nil {
		t.Fatal(err)
	}

	err := newManager(t, store, newKEK(t), clk).Init(t.Context())
	if err == nil || !strings.Contains(err.Error(), "wrong key-encryption key") {
		t.Errorf("Init with another KEK: %v, want a decryption error", err)
	}
	if n := len(listKeys(t, store)); n != 2 {
		t.Errorf("%d keys stored, want 2: a failed Init must not add keys", n)
	}

	if err := newManager(t, store, keys.KEK{}, clk).Init(t.Context()); err == nil || !strings.Contains(err.Error(), "no key-encryption key") {
		t.Errorf("Init without a KEK: %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		addKey(t, store, kek, keys.ES256, storage.KeyActive, clk.Now())
		addKey(t, store, kek, keys.EdDSA, storage.KeyActive, clk.Now())
		m := newManager(t, store, kek, clk)
		if err := m.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, want := m.Algorithms(), []string{keys.RS256, keys.ES256, keys.EdDSA}; !slices.Equal(got, want) {
			t.Errorf("Algorithms() = %v, want %v", got, want)
		}
		// Another replica on the same database verifies what m signs.
		replica := newManager(t, store, kek, clk)
		if err := replica.Init(t.Context()); err != nil {
			t.Fatal(err)
		}

		claims := map[string]any{"iss": "https://id.example", "sub": "user-1", "exp": 1770000000}
		for _, alg := range keys.SupportedAlgorithms() {
			for _, typ := range []string{"at+jwt", "JWT"} {
				t.Run(alg+"/"+typ, func(t *testing.T) {
					token, err := m.Sign(alg, typ, claims)
					if err != nil {
						t.Fatal(err)
					}
					kid, _ := m.ActiveKeyID(alg)
					h := decodeHeader(t, token)
					if h["alg"] != alg || h["kid"] != kid || h["typ"] != typ || len(h) != 3 {
						t.Errorf("header = %v, want exactly alg %s, kid %s, typ %s", h, alg, kid, typ)
					}

					for name, v := range map[string]*keys.Manager{"signer": m, "replica": replica} {
						payload, header, err := v.Verify(token)
						if err != nil {
							t.Fatalf("%s: Verify: %v", name, err)
						}
						var got map[string]any
						if err := json.Unmarshal(payload, &got); err != nil {
							t.Fatal(err)
						}
						if got["sub"] != "user-1" || got["iss"] != "https://id.example" || got["exp"] != float64(1770000000) {
							t.Errorf("%s: payload = %s", name, payload)
						}
						if header.KeyID != kid || header.Algorithm != alg || header.ExtraHeaders[jose.HeaderType] != typ {
							t.Errorf("%s: header = %+v", name, header)
						}
					}
				})
			}
		}
	})
}

func TestSignErrors(t *testing.T) {
	store := openSQLite(t)
	kek, clk := newKEK(t), newClock()
	m := newManager(t, store, kek, clk)

	if _, err := m.Sign(keys.RS256, "JWT", map[string]any{}); !errors.Is(err, keys.ErrNoActiveKey) {
		t.Errorf("Sign before Init: %v, want ErrNoActiveKey", err)
	}
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	addKey(t, store, kek, keys.ES256, storage.KeyNext, clk.Now())
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		alg, typ string
		claims   any
		is       error
		says     string
	}{
		{"only a next key for alg", keys.ES256, "JWT", map[string]any{}, keys.ErrNoActiveKey, ""},
		{"no key at all for alg", keys.EdDSA, "JWT", map[string]any{}, keys.ErrNoActiveKey, ""},
		{"unsupported alg", "HS256", "JWT", map[string]any{}, keys.ErrUnsupportedAlgorithm, ""},
		{"alg none", "none", "JWT", map[string]any{}, keys.ErrUnsupportedAlgorithm, ""},
		{"empty typ", keys.RS256, "", map[string]any{}, nil, "typ"},
		{"nil claims", keys.RS256, "JWT", nil, nil, "JSON object"},
		{"bytes", keys.RS256, "JWT", []byte(`{"sub":"x"}`), nil, "JSON object"},
		{"string", keys.RS256, "JWT", "sub", nil, "JSON object"},
		{"array", keys.RS256, "JWT", []string{"a"}, nil, "JSON object"},
		{"unencodable", keys.RS256, "JWT", map[string]any{"c": make(chan int)}, nil, "marshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := m.Sign(tt.alg, tt.typ, tt.claims)
			if err == nil {
				t.Fatalf("Sign succeeded: %s", token)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v, want it to mention %q", err, tt.says)
			}
		})
	}

	// json.RawMessage is the way to hand over claims already encoded.
	if _, err := m.Sign(keys.RS256, "JWT", json.RawMessage(`{"sub":"x"}`)); err != nil {
		t.Errorf("Sign(json.RawMessage): %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	store := openSQLite(t)
	kek, clk := newKEK(t), newClock()
	m := newManager(t, store, kek, clk)
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	rsKID, _ := m.ActiveKeyID(keys.RS256)
	es := addKey(t, store, kek, keys.ES256, storage.KeyActive, clk.Now())
	revoked := addKey(t, store, kek, keys.RS256, storage.KeyRevoked, clk.Now())
	next := addKey(t, store, kek, keys.EdDSA, storage.KeyNext, clk.Now())
	retired := addKey(t, store, kek, keys.RS256, storage.KeyRetired, clk.Now().Add(-time.Hour))
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	stranger, err := keys.Generate(keys.RS256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	claims := map[string]any{"sub": "user-1", "exp": 1770000000}
	good, err := m.Sign(keys.RS256, "at+jwt", claims)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	payloadB64 := parts[1]

	// What a key-confusion attacker would use as an HMAC secret: the
	// published public key in every form it is easy to get.
	rsJWK := findJWK(t, m, rsKID)
	pubJWK := jose.JSONWebKey{}
	if err := json.Unmarshal(rsJWK, &pubJWK); err != nil {
		t.Fatal(err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(pubJWK.Key)
	if err != nil {
		t.Fatal(err)
	}
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})

	tests := []struct {
		name  string
		token string
		is    error
	}{
		{"empty", "", keys.ErrInvalidToken},
		{"garbage", "not a token", keys.ErrInvalidToken},
		{"two parts", parts[0] + "." + parts[1], keys.ErrInvalidToken},
		{"oversized", strings.Repeat("a", keys.MaxTokenSize+1), keys.ErrInvalidToken},
		{"json serialization", `{"payload":"` + payloadB64 + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, keys.ErrInvalidToken},
		{"unknown key", signWith(t, stranger, keys.RS256, stranger.ID, "at+jwt", claims), keys.ErrUnknownKey},
		{"unknown key claiming a known kid", signWith(t, stranger, keys.RS256, rsKID, "at+jwt", claims), keys.ErrInvalidToken},
		{"revoked key", signWith(t, revoked, keys.RS256, revoked.ID, "at+jwt", claims), keys.ErrUnknownKey},
		{"no kid", signWith(t, stranger, keys.RS256, "", "at+jwt", claims), keys.ErrInvalidToken},
		{"ES256 key under an RS256 kid", signWith(t, es, keys.ES256, rsKID, "at+jwt", claims), keys.ErrInvalidToken},
		{"alg none, no signature", rawToken(map[string]any{"alg": "none", "kid": rsKID, "typ": "at+jwt"}, payloadB64, nil), keys.ErrInvalidToken},
		{"alg none, old signature", rawToken(map[string]any{"alg": "none", "kid": rsKID, "typ": "at+jwt"}, payloadB64, []byte("x")), keys.ErrInvalidToken},
		{"alg None", rawToken(map[string]any{"alg": "None", "kid": rsKID}, payloadB64, nil), keys.ErrInvalidToken},
		{"HS256 with the public JWK as secret", hmacToken(rsKID, payloadB64, rsJWK), keys.ErrInvalidToken},
		{"HS256 with the public PEM as secret", hmacToken(rsKID, payloadB64, pkixPEM), keys.ErrInvalidToken},
		{"HS256 with the public DER as secret", hmacToken(rsKID, payloadB64, pkix), keys.ErrInvalidToken},
		{"HS256 with the modulus as secret", hmacToken(rsKID, payloadB64, pubJWK.Key.(*rsa.PublicKey).N.Bytes()), keys.ErrInvalidToken},
		{"RS512 from a known key", signWith(t, retired, jose.RS512, retired.ID, "at+jwt", claims), keys.ErrInvalidToken},
		{"PS256 from a known key", signWith(t, retired, jose.PS256, retired.ID, "at+jwt", claims), keys.ErrInvalidToken},
		{"payload swapped", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","exp":1770000000}`)) + "." + parts[2], keys.ErrInvalidToken},
		{"typ changed", rawToken(map[string]any{"alg": "RS256", "kid": rsKID, "typ": "JWT"}, payloadB64, mustB64(t, parts[2])), keys.ErrInvalidToken},
		{"signature truncated", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4], keys.ErrInvalidToken},
		{"signature empty", parts[0] + "." + parts[1] + ".", keys.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, _, err := m.Verify(tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: payload %s", payload)
			}
			if !errors.Is(err, keys.ErrInvalidToken) {
				t.Errorf("err = %v, does not match ErrInvalidToken", err)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
		})
	}

	// Published keys that do not sign still verify: next keys (published
	// ahead) and retired keys (until their tokens expire).
	for name, k := range map[string]*keys.KeyPair{"next": next, "retired": retired} {
		token := signWith(t, k, jose.SignatureAlgorithm(k.Algorithm), k.ID, "at+jwt", claims)
		if _, _, err := m.Verify(token); err != nil {
			t.Errorf("token from the %s key: %v", name, err)
		}
	}
	if _, _, err := m.Verify(good); err != nil {
		t.Errorf("the untouched token: %v", err)
	}
}

func TestJWKS(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		t0 := clk.Now()
		m := newManager(t, store, kek, clk)
		if err := m.Init(t.Context()); err != nil { // active RS256 at t0
			t.Fatal(err)
		}
		active, _ := m.ActiveKeyID(keys.RS256)
		var initNext string
		for _, r := range listKeys(t, store) {
			if r.State == storage.KeyNext {
				initNext = r.ID
			}
		}
		// Retired half an hour ago: within the default retention, so
		// another instance's Init leaves it in place.
		retired := addKey(t, store, kek, keys.EdDSA, storage.KeyRetired, t0.Add(-30*time.Minute))
		revoked := addKey(t, store, kek, keys.RS256, storage.KeyRevoked, t0.Add(time.Minute))
		// Two next keys created in the same microsecond: ordered by kid.
		nextA := addKey(t, store, kek, keys.ES256, storage.KeyNext, t0.Add(2*time.Minute))
		nextB := addKey(t, store, kek, keys.EdDSA, storage.KeyNext, t0.Add(2*time.Minute))
		nextKIDs := []string{nextA.ID, nextB.ID}
		sort.Strings(nextKIDs)
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}

		body, etag := m.JWKS()
		var doc struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("JWKS is not JSON: %v\n%s", err, body)
		}
		var kids []string
		for _, k := range doc.Keys {
			kids = append(kids, k["kid"].(string))
			members := slices.Sorted(mapKeys(k))
			var want []string
			switch k["kty"] {
			case "RSA":
				want = []string{"alg", "e", "kid", "kty", "n", "use"}
			case "EC":
				want = []string{"alg", "crv", "kid", "kty", "use", "x", "y"}
			case "OKP":
				want = []string{"alg", "crv", "kid", "kty", "use", "x"}
			}
			if !slices.Equal(members, want) {
				t.Errorf("key %v has members %v, want %v (public parts only)", k["kid"], members, want)
			}
			if k["use"] != "sig" {
				t.Errorf("key %v: use = %v", k["kid"], k["use"])
			}
		}
		initKIDs := []string{active, initNext} // both created at t0
		sort.Strings(initKIDs)
		wantKIDs := append(append([]string{retired.ID}, initKIDs...), nextKIDs...)
		if !slices.Equal(kids, wantKIDs) {
			t.Errorf("JWKS kids = %v, want %v (by creation time, then kid; revoked %s left out)", kids, wantKIDs, revoked.ID)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			t.Fatalf("go-jose cannot read the JWKS: %v", err)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || !k.Valid() {
				t.Errorf("key %s is not a valid public key", k.KeyID)
			}
			if tp, _ := keys.Thumbprint(k.Key); tp != k.KeyID {
				t.Errorf("kid %s is not the key's thumbprint", k.KeyID)
			}
		}

		sum := sha256.Sum256(body)
		if want := `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`; etag != want {
			t.Errorf("ETag = %s, want the quoted SHA-256 of the body %s", etag, want)
		}

		// Another replica serves the same bytes, so ETags agree behind a
		// load balancer.
		replica := newManager(t, store, kek, clk)
		if err := replica.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		if body2, etag2 := replica.JWKS(); string(body2) != string(body) || etag2 != etag {
			t.Errorf("replica JWKS differs:\n%s\n%s", body, body2)
		}

		// Nothing published changed: same bytes, not even rebuilt.
		addKey(t, store, kek, keys.ES256, storage.KeyRevoked, t0.Add(3*time.Minute))
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if body3, etag3 := m.JWKS(); &body3[0] != &body[0] || etag3 != etag {
			t.Error("JWKS rebuilt although the published keys did not change")
		}

		// A new published key changes body and ETag.
		added := addKey(t, store, kek, keys.RS256, storage.KeyRetired, t0.Add(4*time.Minute))
		if err := m.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		body4, etag4 := m.JWKS()
		if etag4 == etag || !strings.Contains(string(body4), added.ID) {
			t.Error("JWKS did not pick up a new retired key")
		}
		if got := m.JWKSMaxAge(); got != 10*time.Minute {
			t.Errorf("JWKSMaxAge() = %v, want the 10 minute default", got)
		}
	})
}

func TestJWKSBeforeInit(t *testing.T) {
	m := newManager(t, openSQLite(t), newKEK(t), newClock())
	body, etag := m.JWKS()
	if string(body) != `{"keys":[]}` || len(etag) < 3 || etag[0] != '"' {
		t.Errorf("JWKS before Init = %s %s", body, etag)
	}
}

func TestRefreshPicksUpKeysFromAnotherInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store storage.Store) {
		kek, clk := newKEK(t), newClock()
		a := newManager(t, store, kek, clk)
		if err := a.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if a.Ready() {
			t.Fatal("Ready on an empty database")
		}

		b := newManager(t, store, kek, clk)
		if err := b.Init(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		kidA, _ := a.ActiveKeyID(keys.RS256)
		kidB, _ := b.ActiveKeyID(keys.RS256)
		if !a.Ready() || kidA != kidB {
			t.Fatalf("after Refresh a uses %q, b created %q", kidA, kidB)
		}
		token, err := b.Sign(keys.RS256, "JWT", map[string]any{"sub": "x"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := a.Verify(token); err != nil {
			t.Errorf("a cannot verify b's token: %v", err)
		}

		// A key another instance publishes ahead of rotation.
		clk.Advance(time.Minute)
		next := addKey(t, store, kek, keys.ES256, storage.KeyNext, clk.Now())
		if err := a.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if body, _ := a.JWKS(); !strings.Contains(string(body), next.ID) {
			t.Error("JWKS lacks the new next key")
		}
		if _, ok := a.ActiveKeyID(keys.ES256); ok {
			t.Error("a next key became active")
		}
		if b.Refresh(t.Context()) != nil {
			t.Fatal("refresh b")
		}
		ab, ae := a.JWKS()
		bb, be := b.JWKS()
		if string(ab) != string(bb) || ae != be {
			t.Error("a and b serve different JWKS")
		}
	})
}

// TestRefreshSkipsUnreadableKey: a key this instance cannot decrypt (say,
// written by an instance with a different KEK) is reported once and left
// out; the other keys keep working.
func TestRefreshSkipsUnreadableKey(t *testing.T) {
	store := openSQLite(t)
	kek, clk := newKEK(t), newClock()
	m := newManager(t, store, kek, clk)
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, etag := m.JWKS()
	alien := addKey(t, store, newKEK(t), keys.ES256, storage.KeyActive, clk.Now())

	err := m.Refresh(t.Context())
	if err == nil || !strings.Contains(err.Error(), alien.ID) {
		t.Errorf("Refresh: %v, want an error naming %s", err, alien.ID)
	}
	if err := m.Refresh(t.Context()); err != nil {
		t.Errorf("second Refresh reports the same key again: %v", err)
	}
	if _, ok := m.ActiveKeyID(keys.ES256); ok {
		t.Error("the unreadable key is active")
	}
	if _, e := m.JWKS(); e != etag {
		t.Error("the unreadable key was published")
	}
	if _, err := m.Sign(keys.RS256, "JWT", map[string]any{}); err != nil {
		t.Errorf("RS256 no longer signs: %v", err)
	}
	// A fresh instance refuses to start rather than run without it.
	if err := newManager(t, store, kek, clk).Init(t.Context()); err == nil {
		t.Error("Init succeeded with an unreadable key in the database")
	}
}

func TestRun(t *testing.T) {
	store := openSQLite(t)
	kek, clk := newKEK(t), newClock()
	var logs syncBuffer
	m := keys.NewManager(store, kek, keys.Options{
		Now:             clk.Now,
		Logger:          slog.New(slog.NewTextHandler(&logs, nil)),
		RefreshInterval: time.Millisecond,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()

	if err := newManager(t, store, kek, clk).Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Run to load the new key", m.Ready)

	alien := addKey(t, store, newKEK(t), keys.EdDSA, storage.KeyNext, clk.Now())
	waitFor(t, "Run to log the unreadable key", func() bool {
		return strings.Contains(logs.String(), "level=ERROR") && strings.Contains(logs.String(), alien.ID)
	})

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// TestConcurrentUse signs, verifies and serves JWKS from many goroutines
// while keys change underneath; run with -race.
func TestConcurrentUse(t *testing.T) {
	store := openSQLite(t)
	kek, clk := newKEK(t), newClock()
	m := newManager(t, store, kek, clk)
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 8 {
		wg.Go(func() {
			typ := []string{"JWT", "at+jwt"}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				token, err := m.Sign(keys.RS256, typ, map[string]any{"n": i})
				if err == nil {
					_, _, err = m.Verify(token)
				}
				if err != nil {
					errs <- err
					return
				}
				if body, etag := m.JWKS(); len(body) == 0 || etag == "" {
					errs <- errors.New("empty JWKS")
					return
				}
				_ = m.Algorithms()
			}
		})
	}
	for i := range 10 {
		clk.Advance(time.Second)
		addKey(t, store, kek, []string{keys.ES256, keys.EdDSA}[i%2], storage.KeyRetired, clk.Now())
		if err := m.Refresh(t.Context()); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var doc struct{ Keys []any }
	body, _ := m.JWKS()
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Keys) != 12 {
		t.Errorf("JWKS has %d keys (err %v), want 12", len(doc.Keys), err)
	}
}

// FuzzVerify feeds Verify arbitrary input: it must never panic, and must
// accept nothing but tokens signed by a published key.
func FuzzVerify(f *testing.F) {
	store := openSQLite(f)
	kek, clk := newKEK(f), newClock()
	m := newManager(f, store, kek, clk)
	if err := m.Init(f.Context()); err != nil {
		f.Fatal(err)
	}
	kid, _ := m.ActiveKeyID(keys.RS256)
	good, err := m.Sign(keys.RS256, "at+jwt", map[string]any{"sub": "x"})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(rawToken(map[string]any{"alg": "none", "kid": kid}, parts[1], nil))
	f.Add(hmacToken(kid, parts[1], findJWK(f, m, kid)))
	f.Add(parts[0] + ".." + parts[2])
	f.Add("..")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Fuzz(func(t *testing.T, token string) {
		payload, h, err := m.Verify(token)
		if err != nil {
			return
		}
		if h.KeyID != kid || h.Algorithm != keys.RS256 {
			t.Fatalf("accepted a token with header %+v", h)
		}
		if token != good {
			// Only our signature over our payload verifies; a different
			// string can verify only if it encodes the same JWS.
			if string(payload) != `{"sub":"x"}` {
				t.Fatalf("accepted a forged payload %q", payload)
			}
		}
	})
}
