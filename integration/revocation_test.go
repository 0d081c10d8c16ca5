package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// publicRefreshApp registers a public (PKCE) client allowed to refresh.
func (s *testServer) publicRefreshApp(t testing.TB) app {
	t.Helper()
	const redirect = "http://127.0.0.1:53124/callback"
	id, _ := s.registerClient(t, `{"client_name":"CLI","application_type":"native","token_endpoint_auth_method":"none",
		"redirect_uris":["http://127.0.0.1/callback"],"grant_types":["authorization_code","refresh_token"],"skip_consent":true}`)
	return app{ID: id, RedirectURI: redirect, RP: newRP(t, s, id, "", redirect)}
}

// TestRevocation: RFC 7009. A refresh token ends its whole family; an
// opaque access token ends at once; a JWT access token ends its grant (a
// machine JWT is listed as revoked); another client's token and an
// unknown token get 200 and nothing changes.
func TestRevocation(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	op := s.newApp(t, "Opaque app", refreshGrants+`,"access_token_format":"opaque"`)
	m := s.newMachine(t, "Batch", "")
	rs := s.newMachine(t, "Resource server", "").asApp()

	t.Run("refresh token: the family ends", func(t *testing.T) {
		first := s.loginWithRefresh(t, a, "family@example.com")
		second, err := refreshVia(a, first.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if !active(s.introspect(t, rs, second.AccessToken)) || !active(s.introspect(t, rs, first.AccessToken)) {
			t.Fatal("access tokens inactive before the revocation")
		}
		r := s.revoke(t, a, second.RefreshToken)
		if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("revoke: %d %v %s", r.Status, r.Header, r.Body)
		}
		if _, err := refreshVia(a, second.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Error("the revoked refresh token still refreshes")
		}
		s.assertInactive(t, a, "revoked refresh token", second.RefreshToken)
		s.assertInactive(t, rs, "first access token of the family", first.AccessToken)
		s.assertInactive(t, rs, "second access token of the family", second.AccessToken)
		if st, _ := userinfoStatus(t, s, second.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("userinfo with an access token of the revoked family: %d, want 401", st)
		}
		// Revoking again is not an error (RFC 7009 §2.2).
		if r := s.revoke(t, a, second.RefreshToken); r.Status != http.StatusOK {
			t.Errorf("second revocation: %d %s", r.Status, r.Body)
		}
	})

	t.Run("opaque access token: ended at once, alone", func(t *testing.T) {
		tok := s.loginWithRefresh(t, op, "opaque@example.com")
		if strings.Contains(tok.AccessToken, ".") {
			t.Fatalf("access token of an opaque-format client is a JWT: %.40s...", tok.AccessToken)
		}
		if !active(s.introspect(t, rs, tok.AccessToken)) {
			t.Fatal("inactive before the revocation")
		}
		if st, _ := userinfoStatus(t, s, tok.AccessToken); st != http.StatusOK {
			t.Fatalf("userinfo before the revocation: %d", st)
		}
		if r := s.revoke(t, op, tok.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		s.assertInactive(t, rs, "revoked opaque access token", tok.AccessToken)
		if st, _ := userinfoStatus(t, s, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("userinfo with the revoked opaque token: %d, want 401", st)
		}
		// Only that token ended: the grant and its refresh token live on.
		next, err := refreshVia(op, tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh after revoking only the access token: %v", err)
		}
		if !active(s.introspect(t, rs, next.AccessToken)) {
			t.Error("the next access token is inactive")
		}
	})

	t.Run("JWT user access token: its grant ends", func(t *testing.T) {
		tok := s.loginWithRefresh(t, a, "jwt@example.com")
		if r := s.revoke(t, a, tok.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		s.assertInactive(t, rs, "revoked JWT access token", tok.AccessToken)
		s.assertInactive(t, a, "refresh token of the revoked grant", tok.RefreshToken)
		if _, err := refreshVia(a, tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Error("the grant's refresh token still refreshes")
		}
		if st, _ := userinfoStatus(t, s, tok.AccessToken); st != http.StatusUnauthorized {
			t.Errorf("userinfo: %d, want 401", st)
		}
		// What revocation cannot do: the signature still verifies, so a
		// resource server that does not ask accepts it until exp.
		if _, err := verifyLocally(t.Context(), s, tok.AccessToken); err != nil {
			t.Errorf("the revoked JWT no longer verifies locally (%v): unexpected, it should fade at exp", err)
		}
	})

	t.Run("JWT machine token: inactive, alone", func(t *testing.T) {
		one, two := m.token(t, s), m.token(t, s)
		if r := s.revoke(t, m.asApp(), one.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		s.assertInactive(t, rs, "revoked machine JWT", one.AccessToken)
		if !active(s.introspect(t, rs, two.AccessToken)) {
			t.Error("revoking one machine token ended another")
		}
		if three := m.token(t, s); !active(s.introspect(t, rs, three.AccessToken)) {
			t.Error("a machine token issued after a revocation is inactive")
		}
	})

	t.Run("another client's token: 200, still active", func(t *testing.T) {
		tok := s.loginWithRefresh(t, a, "victim@example.com")
		opTok := s.loginWithRefresh(t, op, "victim2@example.com")
		mt := m.token(t, s)
		for name, tc := range map[string]struct {
			by    app
			token string
		}{
			"refresh token by another app":    {op, tok.RefreshToken},
			"JWT access token by another app": {op, tok.AccessToken},
			"opaque access token by an app":   {a, opTok.AccessToken},
			"machine token by an app":         {a, mt.AccessToken},
			"JWT access token by a machine":   {m.asApp(), tok.AccessToken},
		} {
			if r := s.revoke(t, tc.by, tc.token); r.Status != http.StatusOK {
				t.Errorf("%s: %d %s, want 200", name, r.Status, r.Body)
			}
		}
		for name, tk := range map[string]string{"JWT access token": tok.AccessToken, "opaque access token": opTok.AccessToken, "machine token": mt.AccessToken} {
			if !active(s.introspect(t, rs, tk)) {
				t.Errorf("%s ended by another client's revocation request", name)
			}
		}
		if !active(s.introspect(t, a, tok.RefreshToken)) {
			t.Error("refresh token ended by another client's revocation request")
		}
		if _, err := refreshVia(a, tok.RefreshToken); err != nil {
			t.Errorf("refresh after another client's revocation request: %v", err)
		}
	})

	t.Run("unknown token: 200", func(t *testing.T) {
		for _, tk := range []string{"no-such-token", oauth2.GenerateVerifier(), "a.b.c", strings.Repeat("x", 4096)} {
			if r := s.revoke(t, a, tk); r.Status != http.StatusOK {
				t.Errorf("revoke %.20q: %d %s, want 200", tk, r.Status, r.Body)
			}
		}
		// Longer than any parameter may be (4096 bytes) is a bad request,
		// not a token.
		assertTokenError(t, s.revoke(t, a, strings.Repeat("x", 4097)), http.StatusBadRequest, "invalid_request")
	})

	t.Run("missing token: invalid_request", func(t *testing.T) {
		assertTokenError(t, postForm(t, s.URL+"/revoke", url.Values{}, a.ID, a.Secret), http.StatusBadRequest, "invalid_request")
		assertTokenError(t, postForm(t, s.URL+"/revoke", url.Values{"token": {""}}, a.ID, a.Secret), http.StatusBadRequest, "invalid_request")
	})

	t.Run("no client authentication: invalid_client, nothing revoked", func(t *testing.T) {
		tok := s.loginWithRefresh(t, a, "unauthenticated@example.com")
		for name, r := range map[string]rawResponse{
			"no credentials": postForm(t, s.URL+"/revoke", url.Values{"token": {tok.RefreshToken}}, "", ""),
			"wrong secret":   postForm(t, s.URL+"/revoke", url.Values{"token": {tok.RefreshToken}}, a.ID, "wrong"),
			"client_id only": postForm(t, s.URL+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {a.ID}}, "", ""),
		} {
			t.Run(name, func(t *testing.T) { assertTokenError(t, r, http.StatusUnauthorized, "invalid_client") })
		}
		if !active(s.introspect(t, a, tok.RefreshToken)) {
			t.Error("an unauthenticated revocation request ended the token")
		}
	})

	t.Run("public client revokes its own refresh token", func(t *testing.T) {
		pub := s.publicRefreshApp(t)
		tok := s.loginWithRefresh(t, pub, "public@example.com")
		r := postForm(t, s.URL+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {pub.ID}}, "", "")
		if r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if _, err := refreshVia(pub, tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Error("the public client's revoked refresh token still refreshes")
		}
		s.assertInactive(t, rs, "access token of the public client's revoked grant", tok.AccessToken)
	})
}

// TestRevocationFailsClosed: with the database unreachable, revocation
// answers 503 — never a 200 that pretends the token was revoked.
func TestRevocationFailsClosed(t *testing.T) {
	s, w := newWatchedServer(t)
	a := s.newApp(t, "App", refreshGrants)
	op := s.newApp(t, "Opaque app", refreshGrants+`,"access_token_format":"opaque"`)
	m := s.newMachine(t, "Batch", "")
	om := s.newMachine(t, "Opaque batch", `"access_token_format":"opaque"`)
	user := s.loginWithRefresh(t, a, "ada@example.com")
	opUser := s.loginWithRefresh(t, op, "grace@example.com")
	mt, omt := m.token(t, s), om.token(t, s)

	// The clients are in the cache, so authentication passes and the 503
	// comes from the revocation itself.
	w.waitCacheRefreshed(t)
	for _, c := range []app{a, op, m.asApp(), om.asApp()} {
		if r := s.revoke(t, c, "warm-up-unknown-token"); r.Status != http.StatusOK {
			t.Fatalf("warm-up: %d %s", r.Status, r.Body)
		}
	}
	if err := s.closeDatabase(); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		by    app
		token string
	}{
		"refresh token":               {a, user.RefreshToken},
		"JWT user access token":       {a, user.AccessToken},
		"opaque user access token":    {op, opUser.AccessToken},
		"JWT machine token":           {m.asApp(), mt.AccessToken},
		"opaque machine token":        {om.asApp(), omt.AccessToken},
		"unknown token (cannot know)": {a, "no-such-token"},
	} {
		t.Run(name, func(t *testing.T) {
			assertTokenError(t, s.revoke(t, tc.by, tc.token), http.StatusServiceUnavailable, "temporarily_unavailable")
		})
	}
	// Refreshing needs the same state: it fails closed too.
	t.Run("refresh", func(t *testing.T) {
		r := postForm(t, s.URL+"/token", refreshForm(user.RefreshToken, ""), a.ID, a.Secret)
		assertTokenError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	})
}
