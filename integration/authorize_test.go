package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

func authorizeURL(issuer string, params url.Values) string {
	return issuer + "/authorize?" + params.Encode()
}

// TestUnregisteredRedirectURIIsNeverRedirectedTo: RFC 6749 §4.1.2.1 and
// RFC 9700 §4.1.3. Every near-miss of a registered redirect URI gets an
// error page, and no Location header at all.
func TestUnregisteredRedirectURIIsNeverRedirectedTo(t *testing.T) {
	s := newTestServer(t)
	web, _ := s.registerClient(t, `{"redirect_uris":["https://app.example/callback"]}`)
	native, _ := s.registerClient(t, `{"application_type":"native","token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/cb","com.example.app:/oauth"]}`)
	tests := []struct {
		name     string
		clientID string
		redirect string
	}{
		{"trailing slash", web, "https://app.example/callback/"},
		{"upper-case host", web, "https://APP.example/callback"},
		{"upper-case path", web, "https://app.example/Callback"},
		{"added query", web, "https://app.example/callback?next=/admin"},
		{"added fragment", web, "https://app.example/callback#x"},
		{"path traversal ..;/", web, "https://app.example/callback/..;/evil"},
		{"dot segment", web, "https://app.example/x/../callback"},
		{"userinfo in authority", web, "https://app.example@evil.example/callback"},
		{"explicit default port", web, "https://app.example:443/callback"},
		{"http downgrade", web, "http://app.example/callback"},
		{"other host", web, "https://evil.example/callback"},
		{"missing", web, ""},
		{"loopback lookalike host", native, "http://localhost.evil.test/cb"},
		{"loopback with userinfo", native, "http://127.0.0.1:8080@evil.example/cb"},
		{"loopback other path", native, "http://127.0.0.1:8080/cb/x"},
		{"localhost is not 127.0.0.1", native, "http://localhost:8080/cb"},
		{"custom scheme with other path", native, "com.example.app:/oauth/evil"},
		{"unknown client", "no-such-client", "https://app.example/callback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := url.Values{"client_id": {tt.clientID}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}
			if tt.redirect != "" {
				params.Set("redirect_uri", tt.redirect)
			}
			b := newBrowser(t, s.Issuer)
			p := b.get(authorizeURL(s.Issuer, params))
			if p.Status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", p.Status)
			}
			if loc := p.Header.Get("Location"); loc != "" {
				t.Errorf("redirected to %q", loc)
			}
			if !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
				t.Errorf("content type %q, want an HTML error page", p.Header.Get("Content-Type"))
			}
			if !strings.Contains(p.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("error page CSP = %q", p.Header.Get("Content-Security-Policy"))
			}
		})
	}

	t.Run("duplicate redirect_uri", func(t *testing.T) {
		raw := s.Issuer + "/authorize?client_id=" + web + "&response_type=code&scope=openid" +
			"&redirect_uri=" + url.QueryEscape("https://app.example/callback") + "&redirect_uri=" + url.QueryEscape("https://evil.example/")
		p := newBrowser(t, s.Issuer).get(raw)
		if p.Status != http.StatusBadRequest || p.Header.Get("Location") != "" {
			t.Errorf("status %d location %q, want 400 and no redirect", p.Status, p.Header.Get("Location"))
		}
	})
}

// TestAuthorizeErrorsAreRedirected: once client and redirect URI are
// verified, errors go back to the app (RFC 6749 §4.1.2.1) with state and
// iss (RFC 9207).
func TestAuthorizeErrorsAreRedirected(t *testing.T) {
	s := newTestServer(t)
	conf, _ := s.registerClient(t, `{"redirect_uris":["`+appCallback+`"],"scope":"openid profile"}`)
	pub, _ := s.registerClient(t, `{"token_endpoint_auth_method":"none","redirect_uris":["`+appCallback+`"]}`)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	base := func(client string) url.Values {
		return url.Values{"client_id": {client}, "redirect_uri": {appCallback}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	}
	tests := []struct {
		name      string
		params    func() url.Values
		wantError string
		wantState string
	}{
		{"implicit flow refused", func() url.Values { v := base(conf); v.Set("response_type", "token"); return v }, "unsupported_response_type", "xyz"},
		{"missing response_type", func() url.Values { v := base(conf); v.Del("response_type"); return v }, "invalid_request", "xyz"},
		{"missing scope", func() url.Values { v := base(conf); v.Del("scope"); return v }, "invalid_scope", "xyz"},
		{"unknown scope", func() url.Values { v := base(conf); v.Set("scope", "openid admin"); return v }, "invalid_scope", "xyz"},
		{"scope not registered for the client", func() url.Values { v := base(conf); v.Set("scope", "openid email"); return v }, "invalid_scope", "xyz"},
		{"public client without PKCE", func() url.Values {
			v := base(pub)
			v.Del("code_challenge")
			v.Del("code_challenge_method")
			return v
		}, "invalid_request", "xyz"},
		{"PKCE plain refused", func() url.Values { v := base(conf); v.Set("code_challenge_method", "plain"); return v }, "invalid_request", "xyz"},
		{"challenge without method means plain", func() url.Values { v := base(conf); v.Del("code_challenge_method"); return v }, "invalid_request", "xyz"},
		{"malformed challenge", func() url.Values { v := base(conf); v.Set("code_challenge", "short"); return v }, "invalid_request", "xyz"},
		{"repeated scope parameter", func() url.Values { v := base(conf); v.Add("scope", "profile"); return v }, "invalid_request", "xyz"},
		{"repeated state is not echoed", func() url.Values { v := base(conf); v.Add("state", "other"); return v }, "invalid_request", ""},
		{"oversized state is not echoed", func() url.Values { v := base(conf); v.Set("state", strings.Repeat("s", 5000)); return v }, "invalid_request", ""},
		{"request object", func() url.Values { v := base(conf); v.Set("request", "eyJ.x.y"); return v }, "request_not_supported", "xyz"},
		{"fragment response mode", func() url.Values { v := base(conf); v.Set("response_mode", "fragment"); return v }, "invalid_request", "xyz"},
		{"prompt none with login", func() url.Values { v := base(conf); v.Set("prompt", "none login"); return v }, "invalid_request", "xyz"},
		{"negative max_age", func() url.Values { v := base(conf); v.Set("max_age", "-1"); return v }, "invalid_request", "xyz"},
		{"prompt none without a session", func() url.Values { v := base(conf); v.Set("prompt", "none"); return v }, "login_required", "xyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newBrowser(t, s.Issuer).get(authorizeURL(s.Issuer, tt.params()))
			if p.Status != http.StatusFound {
				t.Fatalf("status %d, want 302 to the app:\n%s", p.Status, p.Body)
			}
			loc := mustParseURL(t, p.Header.Get("Location"))
			if !strings.HasPrefix(loc.String(), appCallback+"?") {
				t.Fatalf("redirected to %s", loc)
			}
			q := loc.Query()
			if q.Get("error") != tt.wantError {
				t.Errorf("error = %q (%s), want %q", q.Get("error"), q.Get("error_description"), tt.wantError)
			}
			if q.Get("state") != tt.wantState {
				t.Errorf("state = %q, want %q", q.Get("state"), tt.wantState)
			}
			if q.Get("iss") != s.Issuer {
				t.Errorf("iss = %q, want %q", q.Get("iss"), s.Issuer)
			}
			if q.Has("code") {
				t.Error("error response carries a code")
			}
		})
	}
}

// TestAuthorizeEndpointSendsNoCORSHeaders: the authorize endpoint is a
// navigation target, never something another origin may read.
func TestAuthorizeEndpointSendsNoCORSHeaders(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", "")
	req, err := http.NewRequest(http.MethodGet, a.RP.authURL().URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://evil.example")
	r := doRaw(t, req)
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Errorf("authorize sent %s: %s", k, r.Header.Get(k))
		}
	}
	// Token and userinfo, which use no cookies, do allow other origins.
	req, _ = http.NewRequest(http.MethodOptions, s.Issuer+"/token", nil)
	req.Header.Set("Origin", "https://spa.example")
	if r := doRaw(t, req); r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("token preflight: allow-origin %q, allow-credentials %q", r.Header.Get("Access-Control-Allow-Origin"), r.Header.Get("Access-Control-Allow-Credentials"))
	}
}

// TestAuthorizeByPOST: OIDC Core §3.1.2.1 requires POST support; the
// parameters come from the body.
func TestAuthorizeByPOST(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")
	ar := a.RP.authURL()
	u := mustParseURL(t, ar.URL)
	p := b.post(s.Issuer+"/authorize", u.Query())
	if p.Status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", p.Status)
	}
	_, cb := b.follow(p)
	tok, idt := a.RP.exchange(ar, a.RP.codeFrom(ar, cb))
	if tok.AccessToken == "" || idt == nil {
		t.Fatal("no tokens")
	}
}
