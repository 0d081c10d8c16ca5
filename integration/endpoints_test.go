package integration

import (
	"flag"
	"html"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s changed (run with -update if intended):\n--- want\n%s\n--- got\n%s", name, want, got)
	}
}

// TestDiscovery: the metadata document is a wire format; changes must be
// a visible diff. Served at both well-known paths.
func TestDiscovery(t *testing.T) {
	s := newTestServer(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		req, _ := http.NewRequest(http.MethodGet, s.Issuer+path, nil)
		r := doRaw(t, req)
		if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s", path, r.Status, r.Header.Get("Content-Type"))
		}
		golden(t, "discovery.json", []byte(strings.ReplaceAll(r.Body, s.Issuer, "{issuer}")))
	}
	// Everything advertised must exist.
	var d map[string]any
	req, _ := http.NewRequest(http.MethodGet, s.Issuer+"/.well-known/openid-configuration", nil)
	decodeJSON(t, doRaw(t, req).Body, &d)
	for _, k := range []string{"jwks_uri", "userinfo_endpoint"} {
		req, _ := http.NewRequest(http.MethodGet, d[k].(string), nil)
		if r := doRaw(t, req); r.Status == http.StatusNotFound {
			t.Errorf("%s %s is advertised but 404", k, d[k])
		}
	}
}

// TestJWKS: kid, alg and use on every key, cache headers, ETag
// revalidation, and the published key verifies the tokens.
func TestJWKS(t *testing.T) {
	s := newTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, s.Issuer+"/jwks", nil)
	r := doRaw(t, req)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	decodeJSON(t, r.Body, &set)
	// The default policy keeps an active and a next key for RS256 and
	// ES256.
	if len(set.Keys) != 4 {
		t.Fatalf("%d keys, want 4", len(set.Keys))
	}
	kty := map[string]string{"RS256": "RSA", "ES256": "EC"}
	for _, k := range set.Keys {
		alg, _ := k["alg"].(string)
		if k["kid"] == "" || kty[alg] == "" || k["use"] != "sig" || k["kty"] != kty[alg] {
			t.Errorf("key = %v", k)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS publishes private parameter %s", private)
			}
		}
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
		t.Errorf("Cache-Control = %q", cc)
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ = http.NewRequest(http.MethodGet, s.Issuer+"/jwks", nil)
	req.Header.Set("If-None-Match", etag)
	if r := doRaw(t, req); r.Status != http.StatusNotModified || r.Body != "" {
		t.Errorf("revalidation: %d with %d bytes, want 304 and no body", r.Status, len(r.Body))
	}
	// RFC 9110 §13.1.2: a list of tags, weak comparison.
	for _, inm := range []string{`"other", ` + etag, "W/" + etag, "*"} {
		req, _ = http.NewRequest(http.MethodGet, s.Issuer+"/jwks", nil)
		req.Header.Set("If-None-Match", inm)
		if r := doRaw(t, req); r.Status != http.StatusNotModified {
			t.Errorf("If-None-Match %s: %d, want 304", inm, r.Status)
		}
	}
	req, _ = http.NewRequest(http.MethodGet, s.Issuer+"/jwks", nil)
	req.Header.Set("If-None-Match", `"stale"`)
	if r := doRaw(t, req); r.Status != http.StatusOK {
		t.Errorf("stale If-None-Match: %d, want 200", r.Status)
	}
}

// TestUserinfo: RFC 6750 bearer rules and the scopes' claims.
func TestUserinfo(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")
	code, ar := codeFor(t, b, a)
	tok, _ := a.RP.exchange(ar, code)
	idToken := tok.Extra("id_token").(string)

	get := func(url, authz string) rawResponse {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		return doRaw(t, req)
	}
	t.Run("POST with the header works", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.Issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		if r := doRaw(t, req); r.Status != http.StatusOK {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("token in the query string refused", func(t *testing.T) {
		r := get(s.Issuer+"/userinfo?access_token="+tok.AccessToken, "")
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_request") {
			t.Errorf("%d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("token in a form body refused", func(t *testing.T) {
		r := postForm(t, s.Issuer+"/userinfo", map[string][]string{"access_token": {tok.AccessToken}}, "", "")
		if r.Status != http.StatusBadRequest {
			t.Errorf("%d", r.Status)
		}
	})
	t.Run("no token", func(t *testing.T) {
		// RFC 6750 §3.1: no credentials, no error code.
		r := get(s.Issuer+"/userinfo", "")
		if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != `Bearer realm="gatehouse"` || r.Body != "" {
			t.Errorf("%d %q %q", r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
		}
	})
	t.Run("ID token is not an access token", func(t *testing.T) {
		if r := get(s.Issuer+"/userinfo", "Bearer "+idToken); r.Status != http.StatusUnauthorized {
			t.Errorf("%d", r.Status)
		}
	})
	t.Run("tampered token", func(t *testing.T) {
		bad := tok.AccessToken[:len(tok.AccessToken)-4] + "AAAA"
		if r := get(s.Issuer+"/userinfo", "Bearer "+bad); r.Status != http.StatusUnauthorized {
			t.Errorf("%d", r.Status)
		}
	})
	t.Run("without openid scope", func(t *testing.T) {
		ar := a.RP.authURL(oauth2.SetAuthURLParam("scope", "profile"))
		tok, _ := a.RP.exchange(ar, b.authorizeTo(a, ar))
		if tok.Extra("id_token") != nil {
			t.Error("ID token issued without the openid scope")
		}
		r := get(s.Issuer+"/userinfo", "Bearer "+tok.AccessToken)
		if r.Status != http.StatusForbidden || !strings.Contains(r.Header.Get("WWW-Authenticate"), "insufficient_scope") {
			t.Errorf("%d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("claims follow scopes", func(t *testing.T) {
		ar := a.RP.authURL(oauth2.SetAuthURLParam("scope", "openid email"))
		tok, _ := a.RP.exchange(ar, b.authorizeTo(a, ar))
		var claims map[string]any
		decodeJSON(t, get(s.Issuer+"/userinfo", "Bearer "+tok.AccessToken).Body, &claims)
		if claims["email"] != "ada@example.com" || claims["email_verified"] != false {
			t.Errorf("claims %v", claims)
		}
		if _, ok := claims["name"]; ok {
			t.Errorf("name without the profile scope: %v", claims)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		s.Clock.Advance(10*time.Minute + time.Second)
		r := get(s.Issuer+"/userinfo", "Bearer "+tok.AccessToken)
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
	})
}

// TestPagesAndLanguages: security headers on pages, English by default,
// Simplified Chinese by ui_locales or Accept-Language.
func TestPagesAndLanguages(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", "")
	tests := []struct {
		name, uiLocales, acceptLanguage, wantLang string
	}{
		{"default", "", "", "en"},
		{"Accept-Language zh-CN", "", "zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"},
		{"ui_locales wins", "zh-Hans", "en-US", "zh-Hans"},
		{"ui_locales unsupported falls back", "fr", "en-GB", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t, s.Issuer)
			b.lang = tt.acceptLanguage
			var opts []oauth2.AuthCodeOption
			if tt.uiLocales != "" {
				opts = append(opts, oauth2.SetAuthURLParam("ui_locales", tt.uiLocales))
			}
			p, _ := b.open(a.RP.authURL(opts...).URL)
			if !strings.Contains(p.Body, `<html lang="`+tt.wantLang+`"`) {
				t.Errorf("page language: want %s in\n%.300s", tt.wantLang, p.Body)
			}
			csp := p.Header.Get("Content-Security-Policy")
			for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self' http://127.0.0.1:9000"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if p.Header.Get("X-Content-Type-Options") != "nosniff" || p.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers: %v", p.Header)
			}
		})
	}
	t.Run("stylesheet is served", func(t *testing.T) {
		b := newBrowser(t, s.Issuer)
		p, _ := b.open(a.RP.authURL().URL)
		m := regexp.MustCompile(`<link[^>]+href="([^"]+\.css[^"]*)"`).FindStringSubmatch(p.Body)
		if m == nil {
			t.Fatal("the page links no stylesheet")
		}
		css := b.get(mustParseURL(t, s.Issuer+"/").ResolveReference(mustParseURL(t, html.UnescapeString(m[1]))).String())
		if css.Status != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
			t.Errorf("%s: %d %s", m[1], css.Status, css.Header.Get("Content-Type"))
		}
	})
	t.Run("English labels", func(t *testing.T) {
		p, _ := newBrowser(t, s.Issuer).open(a.RP.authURL().URL)
		for _, want := range []string{">Email<", ">Password<", "Sign in"} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("sign-in page lacks %q", want)
			}
		}
	})
}

// TestHealthAndFailClosed: readiness reflects the database, and with the
// database gone the endpoints answer errors, not success, and the server
// keeps serving.
func TestHealthAndFailClosed(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	get := func(path string) rawResponse {
		req, _ := http.NewRequest(http.MethodGet, s.Issuer+path, nil)
		return doRaw(t, req)
	}
	if r := get("/readyz"); r.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	if err := s.closeDatabase(); err != nil {
		t.Fatal(err)
	}
	if r := get("/readyz"); r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "database") {
		t.Errorf("readyz without a database: %d %q", r.Status, r.Body)
	}
	if r := get("/healthz"); r.Status != http.StatusOK {
		t.Errorf("healthz (liveness) without a database: %d", r.Status)
	}
	r := postForm(t, s.Issuer+"/token", tokenForm("x", a.RedirectURI, ""), a.ID, a.Secret)
	var e tokenError
	decodeJSON(t, r.Body, &e)
	if r.Status != http.StatusServiceUnavailable || e.Error != "temporarily_unavailable" {
		t.Errorf("token without a database: %d %q", r.Status, e.Error)
	}
	if r := get("/authorize?" + mustParseURL(t, a.RP.authURL().URL).RawQuery); r.Status != http.StatusServiceUnavailable {
		t.Errorf("authorize without a database: %d", r.Status)
	}
	if r := get("/jwks"); r.Status != http.StatusOK {
		t.Errorf("JWKS is served from memory; got %d", r.Status)
	}
}
