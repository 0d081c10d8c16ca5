package keys

import (
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

// openStore opens a fresh, migrated SQLite database for the white-box tests
// and benchmarks of this file; the Manager tests in keys_test also run
// against Postgres.
func openStore(tb testing.TB) storage.Store {
	tb.Helper()
	return sqlitetest.NewStore(tb)
}

func storeKey(tb testing.TB, store storage.SigningKeyStore, kek KEK, alg string, state storage.KeyState, at time.Time) *KeyPair {
	tb.Helper()
	k, err := Generate(alg, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	row, err := k.Record(kek, state, at, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	if err := store.CreateSigningKey(tb.Context(), row); err != nil {
		tb.Fatal(err)
	}
	return k
}

// TestRefreshReusesDecryptedKeys: a refresh that finds nothing new keeps
// the snapshot; one that finds a new key decrypts only that key.
func TestRefreshReusesDecryptedKeys(t *testing.T) {
	store := openStore(t)
	kek := testKEK(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m := NewManager(store, kek, Options{Now: func() time.Time { return now }, Policy: Policy{Algorithms: []string{RS256}}})
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	s1 := m.snap.Load()
	kid, _ := m.ActiveKeyID(RS256)
	mat := s1.byKID[kid]

	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m.snap.Load() != s1 {
		t.Error("an unchanged key list built a new snapshot")
	}

	storeKey(t, store, kek, ES256, storage.KeyRevoked, now.Add(time.Second))
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if m.snap.Load() != s1 {
		t.Error("a revoked key built a new snapshot")
	}

	next := storeKey(t, store, kek, ES256, storage.KeyNext, now.Add(2*time.Second))
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	s2 := m.snap.Load()
	if s2 == s1 || s2.byKID[next.ID] == nil {
		t.Fatal("the new key was not loaded")
	}
	if s2.byKID[kid] != mat {
		t.Error("the known key was decrypted again")
	}
	if string(s2.jwks) == string(s1.jwks) {
		t.Error("the JWKS was not rebuilt for a new published key")
	}
}

// The benchmarks run on SQLite; storage is not on the measured path.

func benchManager(b *testing.B) *Manager {
	b.Helper()
	store := openStore(b)
	kek := testKEK(b)
	now := time.Now()
	storeKey(b, store, kek, ES256, storage.KeyActive, now)
	storeKey(b, store, kek, EdDSA, storage.KeyActive, now)
	m := NewManager(store, kek, Options{Now: func() time.Time { return now }})
	if err := m.Init(b.Context()); err != nil {
		b.Fatal(err)
	}
	return m
}

var benchClaims = map[string]any{
	"iss": "https://id.example.com", "sub": "6f1c1d2e-7a4b-4c1d-9a55-0d9f2a9c1b3e",
	"aud": "https://api.example.com", "client_id": "billing-service",
	"scope": "invoices:read invoices:write", "iat": 1770000000, "exp": 1770000600,
	"jti": "b0c7c4a9e1f14d2bb8b6c2e5d9f0a1b2",
}

func BenchmarkSign(b *testing.B) {
	m := benchManager(b)
	for _, alg := range algorithms {
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Sign(alg, "at+jwt", benchClaims); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Sign(alg, "at+jwt", benchClaims); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSignerConstruction measures what caching go-jose signers per
// key and typ saves: a Sign that builds its signer every time.
func BenchmarkSignerConstruction(b *testing.B) {
	m := benchManager(b)
	for _, alg := range algorithms {
		mat := m.snap.Load().active[alg]
		b.Run(alg+"/new-signer-only", func(b *testing.B) {
			for b.Loop() {
				if _, err := mat.newSigner("at+jwt"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/sign-uncached", func(b *testing.B) {
			for b.Loop() {
				s, err := mat.newSigner("at+jwt")
				if err != nil {
					b.Fatal(err)
				}
				payload, _ := json.Marshal(benchClaims)
				obj, err := s.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := obj.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJWKS(b *testing.B) {
	m := benchManager(b)
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if body, etag := m.JWKS(); len(body) == 0 || etag == "" {
				b.Fatal("empty")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if body, _ := m.JWKS(); len(body) == 0 {
					b.Error("empty")
					return
				}
			}
		})
	})
}

func BenchmarkVerify(b *testing.B) {
	m := benchManager(b)
	for _, alg := range algorithms {
		token, err := m.Sign(alg, "at+jwt", benchClaims)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(alg, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := m.Verify(token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRefreshUnchanged is the steady-state cost of one Run tick: list
// the keys, find nothing changed.
func BenchmarkRefreshUnchanged(b *testing.B) {
	m := benchManager(b)
	for b.Loop() {
		if err := m.Refresh(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
