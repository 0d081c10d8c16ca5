package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// codeFor gets a fresh code for a in b (signed in, consent given).
func codeFor(t *testing.T, b *browser, a app, opts ...oauth2.AuthCodeOption) (string, authRequest) {
	t.Helper()
	ar := a.RP.authURL(opts...)
	return b.authorizeTo(a, ar), ar
}

func tokenForm(code, redirectURI, verifier string) url.Values {
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	if verifier != "" {
		v.Set("code_verifier", verifier)
	}
	return v
}

// TestCodeReplayRevokesWhatTheCodeIssued: RFC 6749 §4.1.2 — a second
// use fails, and the tokens from the first use stop working.
func TestCodeReplayRevokesWhatTheCodeIssued(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")
	code, ar := codeFor(t, b, a)
	tok, _ := a.RP.exchange(ar, code)
	if st, _ := userinfoStatus(t, s, tok.AccessToken); st != http.StatusOK {
		t.Fatalf("userinfo before replay: %d", st)
	}

	_, err := a.RP.config.Exchange(a.RP.ctx, code, oauth2.VerifierOption(ar.Verifier))
	if got := retrieveErrorCode(t, err); got != "invalid_grant" {
		t.Errorf("replay: error %q, want invalid_grant", got)
	}
	st, challenge := userinfoStatus(t, s, tok.AccessToken)
	if st != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Errorf("userinfo after replay: %d %q, want 401 invalid_token", st, challenge)
	}
}

// TestFailedReplaysRevokeNothing: a replay that cannot prove it holds the
// code (wrong verifier, wrong client credentials, another client) fails
// without revoking the legitimate tokens — otherwise anyone who saw a
// code could log its owner out.
func TestFailedReplaysRevokeNothing(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	other := s.newApp(t, "Other", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")
	code, ar := codeFor(t, b, a)
	tok, _ := a.RP.exchange(ar, code)

	wrongVerifier := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, oauth2.GenerateVerifier()), a.ID, a.Secret)
	wrongSecret := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, ar.Verifier), a.ID, "not-the-secret")
	otherClient := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, ar.Verifier), other.ID, other.Secret)
	wrongRedirect := postForm(t, s.Issuer+"/token", tokenForm(code, "http://127.0.0.1:9000/other", ar.Verifier), a.ID, a.Secret)
	for name, r := range map[string]struct {
		resp rawResponse
		want string
	}{
		"wrong verifier":     {wrongVerifier, "invalid_grant"},
		"wrong secret":       {wrongSecret, "invalid_client"},
		"another client":     {otherClient, "invalid_grant"},
		"wrong redirect_uri": {wrongRedirect, "invalid_grant"},
	} {
		var e tokenError
		decodeJSON(t, r.resp.Body, &e)
		if e.Error != r.want {
			t.Errorf("%s: error %q, want %q", name, e.Error, r.want)
		}
	}
	if st, _ := userinfoStatus(t, s, tok.AccessToken); st != http.StatusOK {
		t.Errorf("userinfo after failed replays: %d, want 200 (nothing revoked)", st)
	}
}

// TestPKCEAtTheTokenEndpoint: RFC 7636 §4.6 and the downgrade defence of
// RFC 9700 §4.8.2.
func TestPKCEAtTheTokenEndpoint(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")

	t.Run("missing verifier", func(t *testing.T) {
		code, _ := codeFor(t, b, a)
		r := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, ""), a.ID, a.Secret)
		assertTokenError(t, r, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("wrong verifier", func(t *testing.T) {
		code, _ := codeFor(t, b, a)
		r := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, oauth2.GenerateVerifier()), a.ID, a.Secret)
		assertTokenError(t, r, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("verifier too short", func(t *testing.T) {
		code, _ := codeFor(t, b, a)
		r := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, "abc"), a.ID, a.Secret)
		assertTokenError(t, r, http.StatusBadRequest, "invalid_grant")
	})
	t.Run("downgrade: verifier without a challenge", func(t *testing.T) {
		// A confidential client may skip PKCE; then a verifier at the
		// token endpoint means someone stripped the challenge.
		params := url.Values{"client_id": {a.ID}, "redirect_uri": {a.RedirectURI}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
		_, cb := b.open(authorizeURL(s.Issuer, params))
		code := cb.Query().Get("code")
		if code == "" {
			t.Fatalf("no code: %s", cb)
		}
		r := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, oauth2.GenerateVerifier()), a.ID, a.Secret)
		assertTokenError(t, r, http.StatusBadRequest, "invalid_grant")
		// Without the verifier the same code still works: the failed
		// attempt did not burn it.
		ok := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, ""), a.ID, a.Secret)
		if ok.Status != http.StatusOK {
			t.Errorf("legitimate redemption after the downgrade attempt: %d %s", ok.Status, ok.Body)
		}
	})
}

// TestClientAuthentication: RFC 6749 §2.3 and §5.2.
func TestClientAuthentication(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	post := s.newApp(t, "Post", `"skip_consent":true,"token_endpoint_auth_method":"client_secret_post"`)
	pubID, _ := s.registerClient(t, `{"token_endpoint_auth_method":"none","redirect_uris":["`+appCallback+`"],"skip_consent":true}`)
	b := s.signedIn(t, "ada@example.com")
	code, ar := codeFor(t, b, a)
	form := tokenForm(code, a.RedirectURI, ar.Verifier)

	withBody := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		wantStatus int
		wantError  string
	}{
		{"wrong secret", form, a.ID, "wrong", 401, "invalid_client"},
		{"unknown client", form, "nobody", "x", 401, "invalid_client"},
		{"no authentication", form, "", "", 401, "invalid_client"},
		{"post when registered for basic", withBody(form, "client_id", a.ID, "client_secret", a.Secret), "", "", 401, "invalid_client"},
		{"basic and post together", withBody(form, "client_secret", a.Secret), a.ID, a.Secret, 400, "invalid_request"},
		{"basic when registered for post", form, post.ID, post.Secret, 401, "invalid_client"},
		{"public client sending a secret", withBody(form, "client_id", pubID, "client_secret", "x"), "", "", 401, "invalid_client"},
		{"public client using the confidential client's code", withBody(form, "client_id", pubID), "", "", 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := postForm(t, s.Issuer+"/token", tt.form, tt.id, tt.secret)
			assertTokenError(t, r, tt.wantStatus, tt.wantError)
			if tt.wantError == "invalid_client" && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("invalid_client without a Basic challenge: %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// None of that burned the code.
	if r := postForm(t, s.Issuer+"/token", form, a.ID, a.Secret); r.Status != http.StatusOK {
		t.Errorf("redemption after failed attempts: %d %s", r.Status, r.Body)
	}

	t.Run("client_secret_post works with x/oauth2", func(t *testing.T) {
		post.RP.config.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		code, ar := codeFor(t, b, post)
		if tok, _ := post.RP.exchange(ar, code); tok.AccessToken == "" {
			t.Fatal("no access token")
		}
	})
}

// TestTokenEndpointRequestHandling: malformed requests get the right error
// and the server keeps serving.
func TestTokenEndpointRequestHandling(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")

	t.Run("duplicate parameter", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.Issuer+"/token", strings.NewReader("grant_type=authorization_code&code=a&code=b"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(a.ID, a.Secret)
		assertTokenError(t, doRaw(t, req), 400, "invalid_request")
	})
	t.Run("JSON body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.Issuer+"/token", strings.NewReader(`{"grant_type":"authorization_code"}`))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(a.ID, a.Secret)
		assertTokenError(t, doRaw(t, req), 400, "invalid_request")
	})
	t.Run("oversized body", func(t *testing.T) {
		form := url.Values{"grant_type": {"authorization_code"}, "pad": {strings.Repeat("x", 100<<10)}}
		assertTokenError(t, postForm(t, s.Issuer+"/token", form, a.ID, a.Secret), 400, "invalid_request")
	})
	t.Run("unsupported grant type", func(t *testing.T) {
		form := url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}
		assertTokenError(t, postForm(t, s.Issuer+"/token", form, a.ID, a.Secret), 400, "unsupported_grant_type")
	})
	t.Run("missing grant type", func(t *testing.T) {
		assertTokenError(t, postForm(t, s.Issuer+"/token", url.Values{}, a.ID, a.Secret), 400, "invalid_request")
	})
	t.Run("unknown code", func(t *testing.T) {
		assertTokenError(t, postForm(t, s.Issuer+"/token", tokenForm("nonsense", a.RedirectURI, ""), a.ID, a.Secret), 400, "invalid_grant")
	})
	t.Run("code in the query string does not count", func(t *testing.T) {
		code, ar := codeFor(t, b, a)
		q := url.Values{"code": {code}, "code_verifier": {ar.Verifier}}
		req, _ := http.NewRequest(http.MethodPost, s.Issuer+"/token?"+q.Encode(),
			strings.NewReader(url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {a.RedirectURI}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(a.ID, a.Secret)
		assertTokenError(t, doRaw(t, req), 400, "invalid_request")
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.Issuer+"/token", nil)
		if r := doRaw(t, req); r.Status != http.StatusMethodNotAllowed && r.Status != http.StatusBadRequest {
			t.Errorf("GET /token: %d", r.Status)
		}
	})
	t.Run("success still works afterwards, with no-store", func(t *testing.T) {
		code, ar := codeFor(t, b, a)
		r := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, ar.Verifier), a.ID, a.Secret)
		if r.Status != http.StatusOK {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
	})
}

// TestCodeExpiresAfter60Seconds uses the injected clock.
func TestCodeExpiresAfter60Seconds(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")

	code, ar := codeFor(t, b, a)
	s.Clock.Advance(59 * time.Second)
	if tok, _ := a.RP.exchange(ar, code); tok.AccessToken == "" {
		t.Fatal("code refused at 59 s")
	}
	code, ar = codeFor(t, b, a)
	s.Clock.Advance(60 * time.Second)
	_, err := a.RP.config.Exchange(a.RP.ctx, code, oauth2.VerifierOption(ar.Verifier))
	if got := retrieveErrorCode(t, err); got != "invalid_grant" {
		t.Errorf("code at 60 s: %q, want invalid_grant", got)
	}
}

// TestDeletedClientCannotRedeem: deleting a client (idp clients delete)
// takes its outstanding codes with it.
func TestDeletedClientCannotRedeem(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")
	code, ar := codeFor(t, b, a)
	if err := s.reg.Delete(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	r := postForm(t, s.Issuer+"/token", tokenForm(code, a.RedirectURI, ar.Verifier), a.ID, a.Secret)
	assertTokenError(t, r, http.StatusUnauthorized, "invalid_client")
}

func assertTokenError(t *testing.T, r rawResponse, status int, code string) {
	t.Helper()
	var e tokenError
	decodeJSON(t, r.Body, &e)
	if r.Status != status || e.Error != code {
		t.Errorf("got %d %q (%s), want %d %q", r.Status, e.Error, e.Description, status, code)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("error response Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
	}
}

// TestCodeDiesWithItsSession: a code issued just before the person's
// sessions are ended (a password change) cannot be redeemed afterwards.
func TestCodeDiesWithItsSession(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")
	code, ar := codeFor(t, b, a, oauth2.SetAuthURLParam("scope", "openid offline_access"))
	u, err := s.Store.GetUserByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.users.SetPassword(t.Context(), u.ID, "a brand new password"); err != nil {
		t.Fatal(err)
	}
	r := postForm(t, s.URL+"/token", tokenForm(code, a.RedirectURI, ar.Verifier), a.ID, a.Secret)
	assertTokenError(t, r, http.StatusBadRequest, "invalid_grant")
}
