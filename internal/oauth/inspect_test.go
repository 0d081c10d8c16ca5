package oauth

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
)

// TestInspect: what Inspect says of every kind of token, and every reason
// a token is inactive. Inspect reads revocation state on every call and
// writes nothing.
func TestInspect(t *testing.T) {
	type env struct {
		t *testing.T // the subtest's
		f *lifeFixture
		s *Server
	}
	// userAccess is the TokenInfo of the access token a sign-in at
	// testNow gave client.
	userAccess := func(e env, client string, in issued, kind TokenKind) TokenInfo {
		info := TokenInfo{
			Active: true, Kind: kind, ClientID: client, Subject: "user-1", UserID: "user-1", GrantID: in.grantID,
			Scopes: []string{"openid", "profile"}, Audience: []string{testIssuer},
			IssuedAt: testNow, ExpiresAt: testNow.Add(10 * time.Minute),
		}
		if kind == KindAccessJWT {
			info.JTI = jtiOf(e.t, e.s, in.AccessToken)
		}
		return info
	}
	refreshInfo := func(client string, in issued, idle time.Duration) TokenInfo {
		return TokenInfo{
			Active: true, Kind: KindRefresh, ClientID: client, Subject: "user-1", UserID: "user-1", GrantID: in.grantID,
			Scopes: []string{"openid", "profile"}, IssuedAt: testNow, ExpiresAt: testNow.Add(idle),
		}
	}
	// sign makes an at+jwt with the server's real key.
	sign := func(e env, typ string, mod func(*AccessTokenClaims)) string {
		c := AccessTokenClaims{
			Issuer: testIssuer, Subject: "user-1", Audience: jwt.Audience{testIssuer}, ClientID: "web", ID: "x.r",
			IssuedAt: jwt.NewNumericDate(testNow), ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Minute)),
		}
		mod(&c)
		tok, err := e.f.keys.Sign(keys.RS256, typ, c)
		if err != nil {
			e.t.Fatal(err)
		}
		return tok
	}
	revokeGrant := func(e env, id string) {
		if err := e.f.db.RevokeGrant(e.t.Context(), id, testNow); err != nil {
			e.t.Fatal(err)
		}
	}
	disable := func(e env) {
		if err := e.f.db.SetUserDisabled(e.t.Context(), "user-1", true, testNow); err != nil {
			e.t.Fatal(err)
		}
	}
	endSessionOnly := func(e env) {
		// The session ended but its grants are not revoked (yet): the
		// session itself is checked.
		execSQL(e.t, e.f.db, `UPDATE sessions SET ended_at = last_seen_at WHERE id = 'sess-1'`)
	}
	inactive := TokenInfo{}

	tests := []struct {
		name string
		// token makes the token to inspect and says what Inspect should
		// report (the zero TokenInfo: inactive).
		token func(t *testing.T, e env) (string, TokenInfo)
	}{
		// Active tokens of every kind.
		{"RFC 9068 JWT access token of a user", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			e.f.clock.Advance(5 * time.Minute) // and the session is not touched
			return in.AccessToken, userAccess(e, "web", in, KindAccessJWT)
		}},
		{"opaque access token of a user", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			e.f.clock.Advance(5 * time.Minute)
			return in.AccessToken, userAccess(e, "opaque", in, KindAccessOpaque)
		}},
		{"JWT machine token", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine")
			return tok, TokenInfo{Active: true, Kind: KindAccessJWT, ClientID: "machine", Subject: "machine", JTI: jtiOf(t, e.s, tok),
				Scopes: []string{"api:read", "api:write"}, Audience: []string{testIssuer}, IssuedAt: testNow, ExpiresAt: testNow.Add(10 * time.Minute)}
		}},
		{"opaque machine token for a resource", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine-opaque", "https://api.example/")
			return tok, TokenInfo{Active: true, Kind: KindAccessOpaque, ClientID: "machine-opaque", Subject: "machine-opaque",
				Scopes: []string{"api:read", "api:write"}, Audience: []string{"https://api.example/"}, IssuedAt: testNow, ExpiresAt: testNow.Add(10 * time.Minute)}
		}},
		{"refresh token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			e.f.clock.Advance(5 * time.Minute)
			return in.RefreshToken, refreshInfo("web", in, 14*day)
		}},
		{"refresh token of a client with its own lifetimes", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "short")
			return in.RefreshToken, refreshInfo("short", in, time.Hour)
		}},
		{"refresh token of an offline grant after logout", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web", "openid", "profile", "offline_access")
			if err := e.f.db.EndSession(t.Context(), "sess-1", testNow); err != nil {
				t.Fatal(err)
			}
			want := refreshInfo("web", in, 14*day)
			want.Scopes = []string{"openid", "profile", "offline_access"}
			return in.RefreshToken, want
		}},
		{"access token of another user's grant", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.loginAs(t, e.s, "web", "user-2", "sess-2")
			want := userAccess(e, "web", in, KindAccessJWT)
			want.Subject, want.UserID = "user-2", "user-2"
			return in.AccessToken, want
		}},

		// Expired, revoked, spent.
		{"expired JWT access token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			e.f.clock.Advance(10 * time.Minute)
			return in.AccessToken, inactive
		}},
		{"expired opaque access token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			e.f.clock.Advance(10 * time.Minute)
			return in.AccessToken, inactive
		}},
		{"expired JWT machine token", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine")
			e.f.clock.Advance(10 * time.Minute)
			return tok, inactive
		}},
		{"expired opaque machine token", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine-opaque")
			e.f.clock.Advance(10 * time.Minute)
			return tok, inactive
		}},
		{"revoked opaque access token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			if err := e.f.db.RevokeAccessToken(t.Context(), secrets.Hash(in.AccessToken), testNow); err != nil {
				t.Fatal(err)
			}
			return in.AccessToken, inactive
		}},
		{"revoked opaque machine token", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine-opaque")
			if err := e.f.db.RevokeAccessToken(t.Context(), secrets.Hash(tok), testNow); err != nil {
				t.Fatal(err)
			}
			return tok, inactive
		}},
		{"denylisted JWT machine token", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine")
			if err := e.f.db.RevokeJWT(t.Context(), jtiOf(t, e.s, tok), testNow.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			return tok, inactive
		}},
		{"denylisted JWT access token of a user", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			if err := e.f.db.RevokeJWT(t.Context(), jtiOf(t, e.s, in.AccessToken), testNow.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			return in.AccessToken, inactive
		}},
		{"spent refresh token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			e.f.mustRefresh(t, e.s, "web", in.RefreshToken)
			return in.RefreshToken, inactive
		}},
		{"refresh token at its idle expiry", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "short")
			e.f.clock.Advance(time.Hour)
			return in.RefreshToken, inactive
		}},

		// What the token stands on.
		{"JWT access token of a revoked grant", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			revokeGrant(e, in.grantID)
			return in.AccessToken, inactive
		}},
		{"opaque access token of a revoked grant", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			revokeGrant(e, in.grantID)
			return in.AccessToken, inactive
		}},
		{"refresh token of a revoked grant", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			revokeGrant(e, in.grantID)
			return in.RefreshToken, inactive
		}},
		{"JWT access token of a disabled user", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			disable(e)
			return in.AccessToken, inactive
		}},
		{"opaque access token of a disabled user", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			disable(e)
			return in.AccessToken, inactive
		}},
		{"refresh token of a disabled user, offline grant", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web", "openid", "offline_access")
			disable(e)
			return in.RefreshToken, inactive
		}},
		{"JWT access token of an ended login session", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			endSessionOnly(e)
			return in.AccessToken, inactive
		}},
		{"refresh token of an ended login session", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			endSessionOnly(e)
			return in.RefreshToken, inactive
		}},
		{"opaque access token after logout", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			if err := e.f.db.EndSession(t.Context(), "sess-1", testNow); err != nil {
				t.Fatal(err)
			}
			return in.AccessToken, inactive
		}},
		{"JWT access token of a timed-out login session", func(t *testing.T, e env) (string, TokenInfo) {
			// The person was last seen a minute before the session's idle
			// timeout; two minutes later the session is over, the access
			// token not yet.
			createSession(t, e.f.db, "sess-old", "user-1", testNow.Add(-day+time.Minute))
			in := e.f.loginAs(t, e.s, "web", "user-1", "sess-old")
			e.f.clock.Advance(2 * time.Minute)
			return in.AccessToken, inactive
		}},
		{"access token of an offline grant after logout", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web", "openid", "profile", "offline_access")
			endSessionOnly(e)
			want := userAccess(e, "web", in, KindAccessJWT)
			want.Scopes = []string{"openid", "profile", "offline_access"}
			return in.AccessToken, want
		}},
		{"JWT machine token of a deleted client", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine")
			if err := e.f.db.DeleteClient(t.Context(), "machine"); err != nil {
				t.Fatal(err)
			}
			return tok, inactive
		}},
		{"opaque machine token of a deleted client", func(t *testing.T, e env) (string, TokenInfo) {
			tok := e.f.machineToken(t, e.s, "machine-opaque")
			if err := e.f.db.DeleteClient(t.Context(), "machine-opaque"); err != nil {
				t.Fatal(err)
			}
			return tok, inactive
		}},
		{"JWT access token of a deleted client", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			if err := e.f.db.DeleteClient(t.Context(), "web"); err != nil {
				t.Fatal(err)
			}
			return in.AccessToken, inactive
		}},

		// Signed by us, but not a valid access token of a grant.
		{"RFC 9068 §4 ID token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			if in.IDToken == "" {
				t.Fatal("no ID token")
			}
			return in.IDToken, inactive
		}},
		{"RFC 9068 §4 access token claims with typ JWT", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return sign(e, "JWT", func(c *AccessTokenClaims) { c.ID = in.grantID + ".r" }), inactive
		}},
		{"the same claims with typ at+jwt are active", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return sign(e, AccessTokenType, func(c *AccessTokenClaims) { c.ID = in.grantID + ".r" }), TokenInfo{
				Active: true, Kind: KindAccessJWT, ClientID: "web", Subject: "user-1", UserID: "user-1", GrantID: in.grantID,
				JTI: in.grantID + ".r", Audience: []string{testIssuer}, IssuedAt: testNow, ExpiresAt: testNow.Add(time.Minute),
			}
		}},
		{"another issuer", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return sign(e, AccessTokenType, func(c *AccessTokenClaims) { c.ID, c.Issuer = in.grantID+".r", "https://evil.example" }), inactive
		}},
		{"claims naming another client's grant", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return sign(e, AccessTokenType, func(c *AccessTokenClaims) { c.ID, c.ClientID = in.grantID+".r", "other" }), inactive
		}},
		{"claims naming another user's grant", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return sign(e, AccessTokenType, func(c *AccessTokenClaims) { c.ID, c.Subject = in.grantID+".r", "user-2" }), inactive
		}},
		{"claims naming an unknown grant", func(t *testing.T, e env) (string, TokenInfo) {
			return sign(e, AccessTokenType, func(c *AccessTokenClaims) { c.ID = "no-such-grant.r" }), inactive
		}},

		// Not tokens of ours.
		{"bad signature", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			parts := strings.Split(in.AccessToken, ".")
			sig := []byte(parts[2])
			if sig[10] == 'A' {
				sig[10] = 'B'
			} else {
				sig[10] = 'A'
			}
			return parts[0] + "." + parts[1] + "." + string(sig), inactive
		}},
		{"malformed JWT", func(t *testing.T, e env) (string, TokenInfo) { return "a.b.c", inactive }},
		{"JWT header and payload only", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return in.AccessToken[:strings.LastIndexByte(in.AccessToken, '.')], inactive
		}},
		{"unknown opaque token", func(t *testing.T, e env) (string, TokenInfo) {
			e.f.login(t, e.s, "opaque")
			tok, err := secrets.New(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			return tok, inactive
		}},
		{"truncated opaque access token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			return in.AccessToken[:len(in.AccessToken)-1], inactive
		}},
		{"opaque access token with a character appended", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "opaque")
			return in.AccessToken + "A", inactive
		}},
		{"truncated refresh token", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return in.RefreshToken[:len(in.RefreshToken)-1], inactive
		}},
		{"a token's hash", func(t *testing.T, e env) (string, TokenInfo) {
			in := e.f.login(t, e.s, "web")
			return hashHex(in.RefreshToken), inactive
		}},
		{"empty", func(t *testing.T, e env) (string, TokenInfo) { return "", inactive }},
		{"oversized", func(t *testing.T, e env) (string, TokenInfo) {
			return strings.Repeat("A", maxParamLen+1), inactive
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			e := env{t, f, f.server(t, Config{})}
			tok, want := tt.token(t, e)
			before := f.snapshot(t)

			got, err := e.s.Inspect(t.Context(), tok)

			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			checkInfo(t, got, want)
			// Inspecting writes nothing, not even session activity.
			f.wantChanged(t, before)
		})
	}
}

// TestInspectDatabaseDown: when the database cannot answer, Inspect says
// so, for every kind of token; it never reports a token active. The client
// lookup (a cache in production) is not asked about revocation state, so
// it being down changes nothing.
func TestInspectDatabaseDown(t *testing.T) {
	tests := []struct {
		name string
		// clients: the client handle fails instead of the store.
		clients bool
		token   func(t *testing.T, f *lifeFixture, s *Server) string
	}{
		{"JWT access token", false, func(t *testing.T, f *lifeFixture, s *Server) string { return f.login(t, s, "web").AccessToken }},
		{"opaque access token", false, func(t *testing.T, f *lifeFixture, s *Server) string { return f.login(t, s, "opaque").AccessToken }},
		{"refresh token", false, func(t *testing.T, f *lifeFixture, s *Server) string { return f.login(t, s, "web").RefreshToken }},
		{"JWT machine token", false, func(t *testing.T, f *lifeFixture, s *Server) string { return f.machineToken(t, s, "machine") }},
		{"opaque machine token", false, func(t *testing.T, f *lifeFixture, s *Server) string { return f.machineToken(t, s, "machine-opaque") }},
		{"unknown opaque token", false, func(t *testing.T, f *lifeFixture, s *Server) string { return "bm90LWEtdG9rZW4" }},
		{"JWT machine token, client lookup down", true, func(t *testing.T, f *lifeFixture, s *Server) string { return f.machineToken(t, s, "machine") }},
		{"JWT access token, client lookup down", true, func(t *testing.T, f *lifeFixture, s *Server) string { return f.login(t, s, "web").AccessToken }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, Config{})
			tok := tt.token(t, f, s)
			down := f.store
			if tt.clients {
				down = f.clients
			}
			if err := down.Close(); err != nil {
				t.Fatal(err)
			}
			info, err := s.Inspect(t.Context(), tok)
			if tt.clients {
				if err != nil || !info.Active {
					t.Errorf("Inspect = %+v, %v; want active from the database", info, err)
				}
				return
			}
			if err == nil || info.Active {
				t.Errorf("Inspect = %+v, %v; want an error", info, err)
			}
			if err != nil && strings.Contains(fmt.Sprint(err), tok) {
				t.Errorf("error %q repeats the token", err)
			}
		})
	}
}

// TestInspectDeletedClientNotFromCache: a deleted client is a revocation
// of its machine tokens, and revocation state is read from the database,
// never from the client lookup (a cache in production), which may still
// hold the client.
func TestInspectDeletedClientNotFromCache(t *testing.T) {
	f := newLifeFixture(t)
	// A stale cache: a database of its own that still has every client.
	stale := newStore(t)
	clients, err := f.db.ListClients(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if err := stale.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	s := f.server(t, Config{}, func(d *Deps) { d.Clients = stale })
	tok := f.machineToken(t, s, "machine")
	if info, err := s.Inspect(t.Context(), tok); err != nil || !info.Active {
		t.Fatalf("before the deletion: %+v, %v", info, err)
	}
	if err := f.db.DeleteClient(t.Context(), "machine"); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Inspect(t.Context(), tok); err != nil || info.Active {
		t.Errorf("after the deletion: %+v, %v; want inactive", info, err)
	}
}
