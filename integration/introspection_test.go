package integration

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// wantIntrospection checks an active RFC 7662 §2.2 response member by
// member. aud nil means the member must be absent.
type wantIntrospection struct {
	scope, clientID, sub, tokenType string
	iat, exp                        time.Time
	aud                             []string
}

func checkIntrospection(t *testing.T, s *testServer, got map[string]any, want wantIntrospection) {
	t.Helper()
	if got["active"] != true {
		t.Fatalf("inactive: %v", got)
	}
	for k, v := range map[string]any{
		"scope": want.scope, "client_id": want.clientID, "sub": want.sub, "token_type": want.tokenType,
		"iss": s.Issuer, "iat": float64(want.iat.Unix()), "exp": float64(want.exp.Unix()),
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	aud := audience(got["aud"])
	if strings.Join(aud, " ") != strings.Join(want.aud, " ") {
		t.Errorf("aud = %v, want %v", got["aud"], want.aud)
	}
}

// otherLetter replaces a base64url character with a different one, so an
// altered token still decodes and only its meaning changes.
func otherLetter(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

// TestIntrospectionActive: RFC 7662 §2.2 — what an active token's
// introspection says, for every kind of token. A refresh token is
// described only to the client it was issued to.
func TestIntrospectionActive(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	op := s.newApp(t, "Opaque app", refreshGrants+`,"access_token_format":"opaque"`)
	m := s.newMachine(t, "Batch", "")
	om := s.newMachine(t, "Opaque batch", `"access_token_format":"opaque"`)
	rs := s.newMachine(t, "Resource server", "").asApp()

	userTok := s.loginWithRefresh(t, a, "ada@example.com")
	opTok := s.loginWithRefresh(t, op, "grace@example.com")
	ada, err := s.Store.GetUserByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	grace, err := s.Store.GetUserByEmail(t.Context(), "grace@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := s.Clock.Now()
	tenMinutes := now.Add(10 * time.Minute)
	userScope := "openid profile email"

	t.Run("JWT user access token", func(t *testing.T) {
		got := s.introspect(t, rs, userTok.AccessToken)
		checkIntrospection(t, s, got, wantIntrospection{userScope, a.ID, ada.ID, "Bearer", now, tenMinutes, []string{s.Issuer}})
		_, claims := jwtParts(t, userTok.AccessToken)
		if got["jti"] != claims["jti"] {
			t.Errorf("jti = %v, want the token's %v", got["jti"], claims["jti"])
		}
	})
	t.Run("opaque user access token", func(t *testing.T) {
		checkIntrospection(t, s, s.introspect(t, rs, opTok.AccessToken),
			wantIntrospection{userScope, op.ID, grace.ID, "Bearer", now, tenMinutes, []string{s.Issuer}})
	})
	t.Run("JWT machine token", func(t *testing.T) {
		checkIntrospection(t, s, s.introspect(t, rs, m.token(t, s, "invoices:read").AccessToken),
			wantIntrospection{"invoices:read", m.ID, m.ID, "Bearer", now, tenMinutes, []string{s.Issuer}})
	})
	t.Run("opaque machine token with a resource", func(t *testing.T) {
		cfg := om.config(s)
		cfg.EndpointParams = url.Values{"resource": {"https://api.example.com"}}
		tok, err := cfg.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		checkIntrospection(t, s, s.introspect(t, rs, tok.AccessToken),
			wantIntrospection{"invoices:read invoices:write", om.ID, om.ID, "Bearer", now, tenMinutes, []string{"https://api.example.com"}})
	})
	t.Run("refresh token, to its own client", func(t *testing.T) {
		got := s.introspect(t, a, userTok.RefreshToken)
		// Refresh tokens are not meant for any resource: no aud.
		checkIntrospection(t, s, got, wantIntrospection{userScope, a.ID, ada.ID, "refresh_token", now, now.Add(14 * 24 * time.Hour), nil})
	})
	t.Run("refresh token, to anyone else", func(t *testing.T) {
		s.assertInactive(t, rs, "refresh token introspected by a resource server", userTok.RefreshToken)
		s.assertInactive(t, op, "refresh token introspected by another app", userTok.RefreshToken)
	})
	t.Run("the response is not cached", func(t *testing.T) {
		r := s.introspectRaw(t, rs, userTok.AccessToken)
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers: %v", r.Header)
		}
	})
}

// TestIntrospectionInactive: RFC 7662 §2.2 — every token that is not
// active gets exactly {"active":false}, whatever the reason.
func TestIntrospectionInactive(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	op := s.newApp(t, "Opaque app", refreshGrants+`,"access_token_format":"opaque"`)
	m := s.newMachine(t, "Batch", "")
	om := s.newMachine(t, "Opaque batch", `"access_token_format":"opaque"`)
	rs := s.newMachine(t, "Resource server", "").asApp()

	t.Run("malformed", func(t *testing.T) {
		for name, tk := range map[string]string{
			"random text":                 "not a token",
			"three dots":                  "a.b.c",
			"two dots only":               "..",
			"alg none":                    "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.",
			"unknown, well-formed opaque": oauth2.GenerateVerifier(),
		} {
			s.assertInactive(t, rs, name, tk)
		}
	})

	t.Run("badly signed and altered JWTs", func(t *testing.T) {
		tok := s.loginWithRefresh(t, a, "forger@example.com")
		if !active(s.introspect(t, rs, tok.AccessToken)) {
			t.Fatal("the genuine token is inactive")
		}
		parts := strings.Split(tok.AccessToken, ".")
		sig := []byte(parts[2])
		sig[10] = otherLetter(sig[10]) // well inside the signature, still base64url
		s.assertInactive(t, rs, "signature byte flipped", parts[0]+"."+parts[1]+"."+string(sig))
		s.assertInactive(t, rs, "signature removed", parts[0]+"."+parts[1]+".")
		s.assertInactive(t, rs, "truncated", tok.AccessToken[:len(tok.AccessToken)-5])
		var claims map[string]any
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		claims["scope"] = "openid profile email admin"
		altered, _ := json.Marshal(claims)
		s.assertInactive(t, rs, "payload altered, signature kept", parts[0]+"."+base64.RawURLEncoding.EncodeToString(altered)+"."+parts[2])
	})

	t.Run("an ID token", func(t *testing.T) {
		b := s.signedIn(t, "idtoken@example.com")
		tok := codeToken(t, b, a)
		idt, _ := tok.Extra("id_token").(string)
		if idt == "" {
			t.Fatal("no ID token")
		}
		s.assertInactive(t, rs, "ID token", idt)
		s.assertInactive(t, a, "ID token, introspected by its own client", idt)
	})

	t.Run("truncated and altered opaque tokens", func(t *testing.T) {
		tok := s.loginWithRefresh(t, op, "opaque@example.com")
		mt := om.token(t, s)
		for name, tk := range map[string]struct {
			by    app
			token string
		}{
			"opaque user access token": {rs, tok.AccessToken},
			"opaque machine token":     {rs, mt.AccessToken},
			"refresh token":            {op, tok.RefreshToken},
		} {
			if !active(s.introspect(t, tk.by, tk.token)) {
				t.Fatalf("%s: the genuine token is inactive", name)
			}
			s.assertInactive(t, tk.by, name+" without its last character", tk.token[:len(tk.token)-1])
			s.assertInactive(t, tk.by, name+" without its first character", tk.token[1:])
			s.assertInactive(t, tk.by, name+" with one more character", tk.token+"A")
			altered := []byte(tk.token)
			altered[len(altered)/2] = otherLetter(altered[len(altered)/2])
			s.assertInactive(t, tk.by, name+" with one character changed", string(altered))
		}
	})

	t.Run("revoked", func(t *testing.T) {
		tok := s.loginWithRefresh(t, op, "revoked@example.com")
		mt, omt := m.token(t, s), om.token(t, s)
		for _, r := range []rawResponse{s.revoke(t, op, tok.AccessToken), s.revoke(t, m.asApp(), mt.AccessToken), s.revoke(t, om.asApp(), omt.AccessToken)} {
			if r.Status != http.StatusOK {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
		}
		s.assertInactive(t, rs, "revoked opaque user access token", tok.AccessToken)
		s.assertInactive(t, rs, "revoked JWT machine token", mt.AccessToken)
		s.assertInactive(t, rs, "revoked opaque machine token", omt.AccessToken)
	})

	t.Run("a JWT whose grant was revoked, at once", func(t *testing.T) {
		tok := s.loginWithRefresh(t, a, "grant@example.com")
		if !active(s.introspect(t, rs, tok.AccessToken)) {
			t.Fatal("inactive before the revocation")
		}
		if r := s.revoke(t, a, tok.RefreshToken); r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		s.assertInactive(t, rs, "JWT of a revoked grant", tok.AccessToken)
		s.assertInactive(t, a, "refresh token of a revoked grant", tok.RefreshToken)
	})

	t.Run("spent and family-revoked refresh tokens", func(t *testing.T) {
		first := s.loginWithRefresh(t, a, "family@example.com")
		second, err := refreshVia(a, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		s.assertInactive(t, a, "spent refresh token (within the grace window)", first.RefreshToken)
		if !active(s.introspect(t, a, second.RefreshToken)) || !active(s.introspect(t, rs, second.AccessToken)) {
			t.Fatal("the successor is inactive before any reuse")
		}
		s.Clock.Advance(6 * time.Second) // past the grace window: reuse
		if _, err := refreshVia(a, first.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Fatal("reuse was not refused")
		}
		s.assertInactive(t, a, "successor of a reused refresh token", second.RefreshToken)
		s.assertInactive(t, rs, "first access token of a reused family", first.AccessToken)
		s.assertInactive(t, rs, "second access token of a reused family", second.AccessToken)
	})

	t.Run("expired", func(t *testing.T) {
		user := s.loginWithRefresh(t, a, "expiry@example.com", oauth2.SetAuthURLParam("scope", "openid offline_access"))
		opUser := s.loginWithRefresh(t, op, "expiry2@example.com")
		mt, omt := m.token(t, s), om.token(t, s)
		access := map[string]string{
			"JWT user access token": user.AccessToken, "opaque user access token": opUser.AccessToken,
			"JWT machine token": mt.AccessToken, "opaque machine token": omt.AccessToken,
		}
		s.Clock.Advance(10*time.Minute - time.Second)
		for name, tk := range access {
			if !active(s.introspect(t, rs, tk)) {
				t.Errorf("%s inactive a second before it expires", name)
			}
		}
		s.Clock.Advance(time.Second)
		for name, tk := range access {
			s.assertInactive(t, rs, name+" at its expiry", tk)
		}
		// An offline refresh token lives 14 days unused.
		if !active(s.introspect(t, a, user.RefreshToken)) {
			t.Fatal("offline refresh token inactive after 10 minutes")
		}
		s.Clock.Advance(14 * 24 * time.Hour)
		s.assertInactive(t, a, "refresh token after its idle lifetime", user.RefreshToken)
	})
}

// TestIntrospectionCallers: RFC 7662 §2.1 — the caller must authenticate,
// and a public client cannot.
func TestIntrospectionCallers(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	pub := s.publicRefreshApp(t)
	tok := s.loginWithRefresh(t, a, "ada@example.com")
	pubTok := s.loginWithRefresh(t, pub, "grace@example.com")

	for name, r := range map[string]rawResponse{
		"public client, another's token": postForm(t, s.URL+"/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {pub.ID}}, "", ""),
		"public client, its own token":   postForm(t, s.URL+"/introspect", url.Values{"token": {pubTok.RefreshToken}, "client_id": {pub.ID}}, "", ""),
		"no credentials":                 postForm(t, s.URL+"/introspect", url.Values{"token": {tok.AccessToken}}, "", ""),
		"wrong secret":                   postForm(t, s.URL+"/introspect", url.Values{"token": {tok.AccessToken}}, a.ID, "wrong"),
	} {
		t.Run(name, func(t *testing.T) {
			assertTokenError(t, r, http.StatusUnauthorized, "invalid_client")
			if strings.Contains(r.Body, "active") {
				t.Errorf("an unauthenticated caller learnt something: %s", r.Body)
			}
		})
	}
	t.Run("missing token", func(t *testing.T) {
		assertTokenError(t, postForm(t, s.URL+"/introspect", url.Values{}, a.ID, a.Secret), http.StatusBadRequest, "invalid_request")
	})
}

// TestIntrospectionFailsClosed: with the database unreachable,
// introspection answers 503 — never active: true from what is in memory,
// not even for a JWT whose signature checks out.
func TestIntrospectionFailsClosed(t *testing.T) {
	s, w := newWatchedServer(t)
	a := s.newApp(t, "App", refreshGrants)
	op := s.newApp(t, "Opaque app", refreshGrants+`,"access_token_format":"opaque"`)
	m := s.newMachine(t, "Batch", "")
	om := s.newMachine(t, "Opaque batch", `"access_token_format":"opaque"`)
	rs := s.newMachine(t, "Resource server", "").asApp()
	user := s.loginWithRefresh(t, a, "ada@example.com")
	revoked := s.loginWithRefresh(t, a, "bob@example.com")
	opUser := s.loginWithRefresh(t, op, "grace@example.com")
	mt, omt := m.token(t, s), om.token(t, s)
	if r := s.revoke(t, a, revoked.RefreshToken); r.Status != http.StatusOK {
		t.Fatal(r.Body)
	}

	// The callers are in the client cache: the 503 comes from the
	// token check itself.
	w.waitCacheRefreshed(t)
	for _, c := range []app{rs, a} {
		s.assertInactive(t, c, "warm-up", "warm-up-unknown-token")
	}
	if st, _ := userinfoStatus(t, s, user.AccessToken); st != http.StatusOK {
		t.Fatalf("userinfo before: %d", st)
	}
	if err := s.closeDatabase(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		by    app
		token string
	}{
		"JWT user access token":              {rs, user.AccessToken},
		"JWT user access token, revoked":     {rs, revoked.AccessToken},
		"opaque user access token":           {rs, opUser.AccessToken},
		"JWT machine token":                  {rs, mt.AccessToken},
		"opaque machine token":               {rs, omt.AccessToken},
		"refresh token":                      {a, user.RefreshToken},
		"unknown opaque token (cannot know)": {rs, "no-such-token"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.introspectRaw(t, tc.by, tc.token)
			assertTokenError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			if strings.Contains(r.Body, "active") {
				t.Errorf("body %s", r.Body)
			}
		})
	}
	t.Run("userinfo", func(t *testing.T) {
		if st, _ := userinfoStatus(t, s, user.AccessToken); st != http.StatusServiceUnavailable {
			t.Errorf("userinfo without a database: %d, want 503", st)
		}
	})
}
