package storagetest

import (
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testAccessTokens(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			g := fullGrant("g1", "c1", "u1", "sid-1")
			createGrant(t, s, g, storage.IssuedTokens{})
			full := fullAccessToken("at-1", g)
			revoked := fullAccessToken("at-2", g)
			revoked.RevokedAt = ptr(t0().Add(time.Minute + 37))
			// A machine token (client credentials): no grant, the client
			// as subject.
			machine := storage.AccessToken{
				TokenHash: hash("at-3"),
				ClientID:  "c1",
				Subject:   "c1",
				Scopes:    []string{"reports:read"},
				CreatedAt: t0().Add(43),
				ExpiresAt: t0().Add(5*time.Minute + 47),
			}
			for _, at := range []storage.AccessToken{full, revoked, machine} {
				must(t, s.CreateAccessToken(ctx, at), "CreateAccessToken")
			}
			assertAccessToken(t, s, "full token", full)
			assertAccessToken(t, s, "revoked token", revoked)
			assertAccessToken(t, s, "machine token", machine)
		}},
		{"unknown token is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			machine := storage.AccessToken{TokenHash: hash("at-1"), ClientID: "c1", Subject: "c1", CreatedAt: t0(), ExpiresAt: t0()}
			must(t, s.CreateAccessToken(ctx, machine), "CreateAccessToken")
			assertNoAccessToken(t, s, "at-2", hash("at-2"))
			wantErr(t, s.RevokeAccessToken(ctx, hash("at-2"), t0()), storage.ErrNotFound, "RevokeAccessToken(at-2)")
			assertAccessToken(t, s, "other token", machine)
		}},
		{"duplicate hash is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			g := fullGrant("g1", "c1", "u1", "sid-1")
			createGrant(t, s, g, storage.IssuedTokens{})
			first := fullAccessToken("at-1", g)
			must(t, s.CreateAccessToken(ctx, first), "CreateAccessToken")
			second := fullAccessToken("at-1", g)
			second.Subject = "impostor"
			wantErr(t, s.CreateAccessToken(ctx, second), storage.ErrAlreadyExists, "CreateAccessToken(same hash)")
			assertAccessToken(t, s, "token after failed insert", first)
		}},
		{"RevokeAccessToken sets RevokedAt once", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			g := fullGrant("g1", "c1", "u1", "sid-1")
			createGrant(t, s, g, storage.IssuedTokens{})
			at, other := fullAccessToken("at-1", g), fullAccessToken("at-2", g)
			must(t, s.CreateAccessToken(ctx, at), "CreateAccessToken")
			must(t, s.CreateAccessToken(ctx, other), "CreateAccessToken")
			revokedAt := t0().Add(2*time.Minute + 53)
			must(t, s.RevokeAccessToken(ctx, at.TokenHash, revokedAt), "RevokeAccessToken")
			must(t, s.RevokeAccessToken(ctx, at.TokenHash, revokedAt.Add(time.Hour)), "RevokeAccessToken again")
			at.RevokedAt = &revokedAt
			assertAccessToken(t, s, "revoked token", at)
			assertAccessToken(t, s, "other token", other)
			// Revoking one token is not revoking its grant.
			assertGrant(t, s, g)
		}},
		{"RevokeJWT and IsJWTRevoked", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			revoked := func(jti string) bool {
				t.Helper()
				ok, err := s.IsJWTRevoked(ctx, jti)
				must(t, err, "IsJWTRevoked("+jti+")")
				return ok
			}
			if revoked("jti-1") {
				t.Fatal("IsJWTRevoked on an empty store: got true")
			}
			exp := t0().Add(10 * time.Minute)
			must(t, s.RevokeJWT(ctx, "jti-1", exp), "RevokeJWT")
			if !revoked("jti-1") {
				t.Error("IsJWTRevoked(jti-1) after RevokeJWT: got false")
			}
			if revoked("jti-2") {
				t.Error("IsJWTRevoked(jti-2): got true, only jti-1 was revoked")
			}
			must(t, s.RevokeJWT(ctx, "jti-1", exp), "RevokeJWT again")
			must(t, s.RevokeJWT(ctx, "jti-1", exp.Add(time.Hour)), "RevokeJWT again with another expiry")
			if !revoked("jti-1") {
				t.Error("IsJWTRevoked(jti-1) after revoking twice: got false")
			}
		}},
	})
}
