package integration

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

const (
	testPassword = "correct horse battery staple"
	appCallback  = "http://127.0.0.1:9000/callback"
)

// TestConfidentialClientCodeFlow walks the whole authorization code flow
// for a confidential client: sign-in page, consent page, code, token
// exchange with x/oauth2, ID token verification with go-oidc, userinfo.
//
// It runs on both backends: Postgres in production, SQLite for idp dev.
func TestConfidentialClientCodeFlow(t *testing.T) {
	backends := map[string]func(testing.TB) storage.Store{
		"postgres": func(t testing.TB) storage.Store { return pgtest.NewStore(t) },
		"sqlite":   func(t testing.TB) storage.Store { return sqlitetest.NewStore(t) },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) { testConfidentialClientCodeFlow(t, newTestServerOn(t, open(t))) })
	}
	// An issuer with a path: every endpoint, form, link and stylesheet
	// lives under it (OIDC Discovery §4.1, RFC 8414 §3).
	t.Run("issuer with a path", func(t *testing.T) {
		s := newTestServer(t, func(c *server.Config) { c.Issuer += "/tenant-a" })
		testConfidentialClientCodeFlow(t, s)
		p, _ := newBrowser(t, s.Issuer).open(s.Issuer + "/login")
		if !strings.Contains(p.Body, `action="/tenant-a/login"`) || !strings.Contains(p.Body, `href="/tenant-a/static/`) {
			t.Errorf("sign-in page links outside the issuer path:\n%s", p.Body)
		}
		origin := strings.TrimSuffix(s.Issuer, "/tenant-a")
		req, _ := http.NewRequest(http.MethodGet, origin+"/.well-known/oauth-authorization-server/tenant-a", nil)
		if r := doRaw(t, req); r.Status != http.StatusOK || !strings.Contains(r.Body, s.Issuer+"/token") {
			t.Errorf("RFC 8414 metadata: %d %.200s", r.Status, r.Body)
		}
	})
}

func testConfidentialClientCodeFlow(t *testing.T, s *testServer) {
	user := s.createUser(t, "ada@example.com", testPassword)
	id, secret := s.registerClient(t, `{"client_name":"Ledger","redirect_uris":["`+appCallback+`"]}`)
	rp := newRP(t, s, id, secret, appCallback)
	b := newBrowser(t, s.Issuer)

	ar := rp.authURL()
	p, cb := b.open(ar.URL)
	if cb != nil {
		t.Fatalf("redirected to the app before signing in: %s", cb)
	}
	if !strings.Contains(p.Body, "Ledger") {
		t.Errorf("sign-in page does not name the client")
	}
	p, cb = b.signIn(p, "ada@example.com", testPassword)
	if cb != nil {
		t.Fatalf("third-party client skipped consent: %s", cb)
	}
	for _, want := range []string{"Ledger", "ada@example.com", "Allow", "Deny"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	_, cb = b.consent(p, "allow")
	code := rp.codeFrom(ar, cb)

	tok, idt := rp.exchange(ar, code)
	if idt == nil {
		t.Fatal("no ID token")
	}
	if idt.Subject != user.ID {
		t.Errorf("sub = %q, want %q", idt.Subject, user.ID)
	}
	var claims struct {
		SID      string   `json:"sid"`
		AMR      []string `json:"amr"`
		AuthTime int64    `json:"auth_time"`
		Email    string   `json:"email"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.SID == "" || len(claims.AMR) != 1 || claims.AMR[0] != "pwd" || claims.AuthTime != s.Clock.Now().Unix() {
		t.Errorf("ID token claims sid=%q amr=%v auth_time=%d, want a sid, [pwd], %d", claims.SID, claims.AMR, claims.AuthTime, s.Clock.Now().Unix())
	}
	if claims.Email != "ada@example.com" {
		t.Errorf("email claim = %q", claims.Email)
	}
	if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
		t.Errorf("token type %q expiry %v", tok.TokenType, tok.Expiry)
	}

	// The access token is an RFC 9068 JWT with identifiers only.
	header, payload := jwtParts(t, tok.AccessToken)
	if header["typ"] != "at+jwt" || header["kid"] == nil || header["alg"] != "RS256" {
		t.Errorf("access token header = %v", header)
	}
	for _, c := range []string{"iss", "sub", "aud", "client_id", "scope", "jti", "exp", "iat"} {
		if _, ok := payload[c]; !ok {
			t.Errorf("access token lacks %s", c)
		}
	}
	for _, c := range []string{"email", "name"} {
		if _, ok := payload[c]; ok {
			t.Errorf("access token carries personal data: %s", c)
		}
	}
	if payload["client_id"] != id || payload["sub"] != user.ID {
		t.Errorf("access token client_id=%v sub=%v", payload["client_id"], payload["sub"])
	}

	// Userinfo through go-oidc.
	info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != user.ID || info.Email != "ada@example.com" {
		t.Errorf("userinfo sub=%q email=%q", info.Subject, info.Email)
	}
	var profile struct {
		Name string `json:"name"`
	}
	if err := info.Claims(&profile); err != nil || profile.Name != user.Name {
		t.Errorf("userinfo name = %q (%v), want %q", profile.Name, err, user.Name)
	}
}

// TestPublicClientCodeFlowWithPKCE: a public client authenticates with
// nothing but its client_id and the PKCE verifier.
func TestPublicClientCodeFlowWithPKCE(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "grace@example.com", testPassword)
	id, secret := s.registerClient(t, `{"client_name":"CLI","application_type":"native",
		"token_endpoint_auth_method":"none","redirect_uris":["http://127.0.0.1/callback"]}`)
	if secret != "" {
		t.Fatal("public client got a secret")
	}
	// RFC 8252 §7.3: any port on the loopback redirect.
	rp := newRP(t, s, id, "", "http://127.0.0.1:53124/callback")
	b := newBrowser(t, s.Issuer)
	ar := rp.authURL()
	p, _ := b.open(ar.URL)
	p, _ = b.signIn(p, "grace@example.com", testPassword)
	_, cb := b.consent(p, "allow")
	tok, idt := rp.exchange(ar, rp.codeFrom(ar, cb))
	if idt == nil || tok.AccessToken == "" {
		t.Fatal("no tokens")
	}
}

// jwtParts decodes a JWT's header and payload without verifying it.
func jwtParts(t *testing.T, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}
