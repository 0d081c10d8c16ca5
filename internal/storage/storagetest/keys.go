package storagetest

import (
	"context"
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
				// Any number of keys in the other states.
				key("d-next", "RS256", storage.KeyNext),
				key("e-next", "RS256", storage.KeyNext),
				key("f-retired", "RS256", storage.KeyRetired),
				key("g-retired", "RS256", storage.KeyRetired),
				key("h-revoked", "RS256", storage.KeyRevoked),
			} {
				must(t, s.CreateSigningKey(ctx, k), "CreateSigningKey "+k.ID)
				want = append(want, k)
			}
			err := s.CreateSigningKey(ctx, key("z-rs", "RS256", storage.KeyActive))
			wantErr(t, err, storage.ErrAlreadyExists, "second active RS256 key")
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
}
