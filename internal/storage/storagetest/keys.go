package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testSigningKeys(t *testing.T, open OpenFunc) {
	key := func(id, alg string, state storage.KeyState) storage.SigningKey {
		return storage.SigningKey{
			ID:                  id,
			Algorithm:           alg,
			State:               state,
			PrivateKeyEncrypted: append([]byte{0x00, 0xff, 0x10}, id...),
			// Spacing and key order are part of the value: the JWK must
			// come back byte for byte.
			PublicJWK: []byte(`{"kty": "OKP",  "kid":"` + id + `", "crv":"Ed25519", "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`),
			CreatedAt: t0(),
		}
	}
	runCases(t, open, []testCase{
		{"ListSigningKeys is empty on an empty store", func(t *testing.T, s storage.Store) {
			got, err := s.ListSigningKeys(t.Context())
			must(t, err, "ListSigningKeys")
			if len(got) != 0 {
				t.Fatalf("ListSigningKeys: got %d keys, want 0", len(got))
			}
		}},
		{"round-trips every field in every state, ordered by CreatedAt then ID", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			next := key("k-next", "RS256", storage.KeyNext)
			next.CreatedAt = t0().Add(2 * time.Hour)
			active := key("k-active", "RS256", storage.KeyActive)
			active.CreatedAt = t0().Add(time.Hour)
			active.ActivatedAt = ptr(t0().Add(time.Hour + 77))
			retired := key("k-retired", "RS256", storage.KeyRetired)
			retired.ActivatedAt = ptr(t0().Add(time.Minute + 3))
			retired.RetiredAt = ptr(t0().Add(time.Hour + 78))
			// Same CreatedAt as retired: the ID orders them.
			revoked := key("k-revoked", "ES256", storage.KeyRevoked)
			revoked.RetiredAt = ptr(t0().Add(time.Second))
			for _, k := range []storage.SigningKey{next, active, retired, revoked} {
				must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey "+k.ID)
			}
			got, err := s.ListSigningKeys(ctx)
			must(t, err, "ListSigningKeys")
			assertEqual(t, "ListSigningKeys", got, []storage.SigningKey{retired, revoked, active, next})
		}},
		{"duplicate ID is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			first := key("k1", "RS256", storage.KeyNext)
			must(t, s.CreateSigningKey(ctx, first), "CreateSigningKey")
			wantErr(t, s.CreateSigningKey(ctx, key("k1", "ES256", storage.KeyNext)),
				storage.ErrAlreadyExists, "CreateSigningKey(same ID)")
			got, err := s.ListSigningKeys(ctx)
			must(t, err, "ListSigningKeys")
			assertEqual(t, "keys", got, []storage.SigningKey{first})
		}},
		{"at most one active key per algorithm", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			var want []storage.SigningKey
			for _, k := range []storage.SigningKey{
				key("a-rs", "RS256", storage.KeyActive),
				// Other algorithms have their own active key.
				key("b-es", "ES256", storage.KeyActive),
				key("c-ed", "EdDSA", storage.KeyActive),
				// One next key, and any number of retired and revoked.
				key("d-next", "RS256", storage.KeyNext),
				key("f-retired", "RS256", storage.KeyRetired),
				key("g-retired", "RS256", storage.KeyRetired),
				key("h-revoked", "RS256", storage.KeyRevoked),
			} {
				must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey "+k.ID)
				want = append(want, k)
			}
			err := s.CreateSigningKey(ctx, key("z-rs", "RS256", storage.KeyActive))
			wantErr(t, err, storage.ErrAlreadyExists, "second active RS256 key")
			err = s.CreateSigningKey(ctx, key("z-next", "RS256", storage.KeyNext))
			wantErr(t, err, storage.ErrAlreadyExists, "second next RS256 key")
			got, err := s.ListSigningKeys(ctx)
			must(t, err, "ListSigningKeys")
			assertEqual(t, "keys", got, want)
		}},
		{"CreateSigningKey active from 20 goroutines succeeds exactly once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			keys := make([]storage.SigningKey, 20)
			for i := range keys {
				keys[i] = key(fmt.Sprintf("k%02d", i), "RS256", storage.KeyActive)
			}
			errs := hammer(t, len(keys), func(ctx context.Context, i int) error { return s.CreateSigningKey(ctx, keys[i]) })
			winner := checkOneWinner(t, errs, storage.ErrAlreadyExists)
			got, err := s.ListSigningKeys(ctx)
			must(t, err, "ListSigningKeys")
			assertEqual(t, "keys", got, []storage.SigningKey{keys[winner]})
		}},
	})
	testSigningKeyChanges(t, open, key)
}

func testSigningKeyChanges(t *testing.T, open OpenFunc, key func(id, alg string, state storage.KeyState) storage.SigningKey) {
	at := t0().Add(30 * 24 * time.Hour)
	// seed creates an active and a next RS256 key and an active ES256 key.
	seed := func(t *testing.T, s storage.Store) (active, next, es storage.SigningKey) {
		t.Helper()
		active = key("rs-active", "RS256", storage.KeyActive)
		active.ActivatedAt = ptr(t0())
		next = key("rs-next", "RS256", storage.KeyNext)
		next.CreatedAt = t0().Add(time.Hour)
		es = key("es-active", "ES256", storage.KeyActive)
		es.ActivatedAt = ptr(t0())
		for _, k := range []storage.SigningKey{active, next, es} {
			must(t, s.CreateSigningKey(t.Context(), k), "CreateSigningKey "+k.ID)
		}
		return active, next, es
	}
	list := func(t *testing.T, s storage.Store) []storage.SigningKey {
		t.Helper()
		got, err := s.ListSigningKeys(t.Context())
		must(t, err, "ListSigningKeys")
		return got
	}
	version := func(t *testing.T, s storage.Store) int64 {
		t.Helper()
		v, err := s.SigningKeysVersion(t.Context())
		must(t, err, "SigningKeysVersion")
		return v
	}
	runCases(t, open, []testCase{
		{"promote retires the active key of the same algorithm only, and creates the fresh next key", func(t *testing.T, s storage.Store) {
			active, next, es := seed(t, s)
			fresh := key("rs-fresh", "RS256", storage.KeyNext)
			fresh.CreatedAt = at
			must(t, s.ChangeSigningKeys(t.Context(), storage.SigningKeyChanges{
				At: at, Promote: []string{next.ID}, Create: []storage.SigningKey{fresh},
			}), "ChangeSigningKeys")
			active.State, active.RetiredAt = storage.KeyRetired, ptr(at)
			next.State, next.ActivatedAt = storage.KeyActive, ptr(at)
			assertEqual(t, "keys", list(t, s), []storage.SigningKey{es, active, next, fresh})
		}},
		{"promote without an active key activates the next key", func(t *testing.T, s storage.Store) {
			next := key("ed-next", "EdDSA", storage.KeyNext)
			must(t, s.CreateSigningKey(t.Context(), next), "CreateSigningKey")
			must(t, s.ChangeSigningKeys(t.Context(), storage.SigningKeyChanges{At: at, Promote: []string{next.ID}}), "promote")
			next.State, next.ActivatedAt = storage.KeyActive, ptr(at)
			assertEqual(t, "keys", list(t, s), []storage.SigningKey{next})
		}},
		{"emergency: revoke the active key and promote the next one in one step", func(t *testing.T, s storage.Store) {
			active, next, es := seed(t, s)
			must(t, s.ChangeSigningKeys(t.Context(), storage.SigningKeyChanges{
				At: at, Revoke: []string{active.ID}, Promote: []string{next.ID},
			}), "ChangeSigningKeys")
			active.State, active.RevokedAt = storage.KeyRevoked, ptr(at)
			next.State, next.ActivatedAt = storage.KeyActive, ptr(at)
			assertEqual(t, "keys", list(t, s), []storage.SigningKey{es, active, next})
		}},
		{"retire and delete", func(t *testing.T, s storage.Store) {
			active, next, es := seed(t, s)
			must(t, s.ChangeSigningKeys(t.Context(), storage.SigningKeyChanges{At: at, Retire: []string{es.ID}}), "retire")
			must(t, s.ChangeSigningKeys(t.Context(), storage.SigningKeyChanges{At: at, Delete: []string{es.ID}}), "delete")
			assertEqual(t, "keys", list(t, s), []storage.SigningKey{active, next})
		}},
		{"a broken precondition changes nothing at all", func(t *testing.T, s storage.Store) {
			active, next, es := seed(t, s)
			revoked := key("old-revoked", "RS256", storage.KeyRevoked)
			must(t, s.CreateSigningKey(t.Context(), revoked), "CreateSigningKey")
			before := list(t, s)
			v := version(t, s)
			for _, tc := range []struct {
				name string
				c    storage.SigningKeyChanges
				want error
			}{
				{"promote an active key", storage.SigningKeyChanges{Promote: []string{active.ID}}, storage.ErrConflict},
				{"promote a missing key", storage.SigningKeyChanges{Promote: []string{"nope"}}, storage.ErrNotFound},
				{"retire a next key", storage.SigningKeyChanges{Retire: []string{next.ID}}, storage.ErrConflict},
				{"delete an active key", storage.SigningKeyChanges{Delete: []string{es.ID}}, storage.ErrConflict},
				{"delete a next key", storage.SigningKeyChanges{Delete: []string{next.ID}}, storage.ErrConflict},
				{"delete a missing key", storage.SigningKeyChanges{Delete: []string{"nope"}}, storage.ErrNotFound},
				{"revoke a revoked key", storage.SigningKeyChanges{Revoke: []string{revoked.ID}}, storage.ErrConflict},
				{"revoke a missing key", storage.SigningKeyChanges{Revoke: []string{"nope"}}, storage.ErrNotFound},
				{"a second next key", storage.SigningKeyChanges{Create: []storage.SigningKey{key("n2", "RS256", storage.KeyNext)}}, storage.ErrAlreadyExists},
				// Earlier steps of a failing change are rolled back.
				{"promote then a bad delete", storage.SigningKeyChanges{
					Revoke: []string{es.ID}, Promote: []string{next.ID},
					Create: []storage.SigningKey{key("ok", "EdDSA", storage.KeyNext)}, Delete: []string{next.ID},
				}, storage.ErrConflict},
				// After the promotion the old active key is retired, but
				// the same change cannot promote the new one again.
				{"promote twice", storage.SigningKeyChanges{Promote: []string{next.ID, next.ID}}, storage.ErrConflict},
			} {
				tc.c.At = at
				wantErr(t, s.ChangeSigningKeys(t.Context(), tc.c), tc.want, tc.name)
				assertEqual(t, "keys after "+tc.name, list(t, s), before)
			}
			if got := version(t, s); got != v {
				t.Errorf("SigningKeysVersion moved from %d to %d on changes that were rolled back", v, got)
			}
		}},
		{"every change moves SigningKeysVersion", func(t *testing.T, s storage.Store) {
			v0 := version(t, s)
			_, next, _ := seed(t, s)
			v1 := version(t, s)
			if v1 == v0 {
				t.Fatalf("version %d did not move on CreateSigningKey", v1)
			}
			must(t, s.ChangeSigningKeys(t.Context(), storage.SigningKeyChanges{At: at, Promote: []string{next.ID}}), "promote")
			v2 := version(t, s)
			if v2 == v1 {
				t.Fatalf("version %d did not move on a promotion", v2)
			}
			must(t, s.ReplaceSigningKeyCiphertext(t.Context(), next.ID, next.PrivateKeyEncrypted, []byte("rewrapped")), "replace")
			if v3 := version(t, s); v3 == v2 {
				t.Fatalf("version %d did not move on a ciphertext change", v3)
			}
		}},
		{"ReplaceSigningKeyCiphertext is a compare and swap", func(t *testing.T, s storage.Store) {
			active, next, es := seed(t, s)
			wantErr(t, s.ReplaceSigningKeyCiphertext(t.Context(), active.ID, []byte("stale"), []byte("new")),
				storage.ErrConflict, "replace with a stale ciphertext")
			wantErr(t, s.ReplaceSigningKeyCiphertext(t.Context(), "nope", nil, []byte("new")),
				storage.ErrNotFound, "replace a missing key")
			assertEqual(t, "keys after refused swaps", list(t, s), []storage.SigningKey{es, active, next})
			must(t, s.ReplaceSigningKeyCiphertext(t.Context(), active.ID, active.PrivateKeyEncrypted, []byte("new")), "replace")
			active.PrivateKeyEncrypted = []byte("new")
			assertEqual(t, "keys", list(t, s), []storage.SigningKey{es, active, next})
		}},
		{"20 instances promoting the same next key: exactly one promotion", func(t *testing.T, s storage.Store) {
			active, next, es := seed(t, s)
			fresh := make([]storage.SigningKey, 20)
			for i := range fresh {
				fresh[i] = key(fmt.Sprintf("fresh%02d", i), "RS256", storage.KeyNext)
				fresh[i].CreatedAt = at
			}
			errs := hammer(t, len(fresh), func(ctx context.Context, i int) error {
				return s.ChangeSigningKeys(ctx, storage.SigningKeyChanges{
					At: at, Promote: []string{next.ID}, Create: []storage.SigningKey{fresh[i]},
				})
			})
			winner := checkOneWinner(t, errs, storage.ErrConflict)
			active.State, active.RetiredAt = storage.KeyRetired, ptr(at)
			next.State, next.ActivatedAt = storage.KeyActive, ptr(at)
			assertEqual(t, "keys", list(t, s), []storage.SigningKey{es, active, next, fresh[winner]})
		}},
		{"WatchSigningKeys returns when its context ends", func(t *testing.T, s storage.Store) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- s.WatchSigningKeys(ctx, func() {}) }()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("WatchSigningKeys = %v, want context.Canceled", err)
			}
		}},
	})
}
