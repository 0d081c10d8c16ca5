package oauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func TestAccessTokenClaimsGrantID(t *testing.T) {
	tests := []struct {
		name, jti, want string
	}{
		{"grant id and random part", "g-123.r4nd0m", "g-123"},
		{"only the first dot separates", "g.r.extra", "g"},
		// A machine token's jti is random, with no dot: no grant.
		{"no dot: machine token", "r4nd0m", ""},
		{"leading dot: empty grant", ".r4nd0m", ""},
		{"trailing dot", "g-123.", "g-123"},
		{"empty jti", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (AccessTokenClaims{ID: tt.jti}).GrantID(); got != tt.want {
				t.Errorf("GrantID(jti=%q) = %q, want %q", tt.jti, got, tt.want)
			}
		})
	}
}

// fakeSigner records what it was asked to sign and returns a compact
// JWS look-alike, "signed.<base64url claims>.sig", so fakeVerifier can hand
// the claims back and the token has the shape of a JWT.
type fakeSigner struct {
	alg, typ string
	claims   []byte
	calls    int
	err      error
}

func (s *fakeSigner) Sign(alg, typ string, claims any) (string, error) {
	s.calls++
	if s.err != nil {
		return "", s.err
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s.alg, s.typ, s.claims = alg, typ, b
	return fakeJWT("signed", b), nil
}

// fakeJWT builds "<head>.<base64url payload>.sig"; fakeVerifier accepts
// the head "signed" only.
func fakeJWT(head string, payload []byte) string {
	return head + "." + base64.RawURLEncoding.EncodeToString(payload) + ".sig"
}

// fakeVerifier accepts tokens made by fakeSigner and reports typ as the
// protected header's typ.
type fakeVerifier struct {
	typ any
}

func (v fakeVerifier) Verify(token string) ([]byte, jose.Header, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "signed" || parts[2] != "sig" {
		return nil, jose.Header{}, errors.New("bad signature")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, jose.Header{}, errors.New("bad signature")
	}
	h := jose.Header{ExtraHeaders: map[jose.HeaderKey]any{}}
	if v.typ != nil {
		h.ExtraHeaders[jose.HeaderType] = v.typ
	}
	return payload, h, nil
}

type fakeIDTokens struct{}

func (fakeIDTokens) MintIDToken(context.Context, IDTokenRequest) (string, error) {
	return "id-token", nil
}

func TestNewServer(t *testing.T) {
	st := newStore(t)
	full := Deps{
		Store: st, Sessions: session.NewManager(st, session.Config{}, session.Options{}),
		Signer: &fakeSigner{}, Verifier: fakeVerifier{}, IDTokens: fakeIDTokens{}, SuccessorKey: testSuccessorKey,
	}
	tests := []struct {
		name    string
		cfg     Config
		deps    func(Deps) Deps
		wantErr bool
	}{
		{"complete", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { return d }, false},
		{"no issuer", Config{}, func(d Deps) Deps { return d }, true},
		{"no store", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.Store = nil; return d }, true},
		{"no sessions", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.Sessions = nil; return d }, true},
		{"no signer", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.Signer = nil; return d }, true},
		{"no verifier", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.Verifier = nil; return d }, true},
		{"no ID token minter", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.IDTokens = nil; return d }, true},
		{"no successor key", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.SuccessorKey = nil; return d }, true},
		{"31-byte successor key", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.SuccessorKey = testSuccessorKey[:31]; return d }, true},
		{"64-byte successor key", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.SuccessorKey = bytes.Repeat([]byte{1}, 64); return d }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewServer(tt.cfg, tt.deps(full))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && s == nil {
				t.Fatal("nil server without error")
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		s, err := NewServer(Config{Issuer: "https://idp.example"}, full)
		if err != nil {
			t.Fatal(err)
		}
		want := Config{Issuer: "https://idp.example", AccessTokenTTL: 10 * time.Minute, CodeTTL: time.Minute,
			AccessTokenAudience: "https://idp.example", SigningAlg: "RS256",
			RefreshIdleTTL: 14 * 24 * time.Hour, RefreshAbsoluteTTL: 90 * 24 * time.Hour, RefreshGrace: 5 * time.Second}
		if got := s.Config(); got != want {
			t.Errorf("Config() = %+v, want %+v", got, want)
		}
	})
	t.Run("explicit values kept", func(t *testing.T) {
		cfg := Config{Issuer: "https://idp.example", AccessTokenTTL: time.Minute, CodeTTL: 5 * time.Second,
			AccessTokenAudience: "https://api.example", SigningAlg: "ES256",
			RefreshIdleTTL: time.Hour, RefreshAbsoluteTTL: 2 * time.Hour, RefreshGrace: 2 * time.Second}
		s, err := NewServer(cfg, full)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Config(); got != cfg {
			t.Errorf("Config() = %+v, want %+v", got, cfg)
		}
	})
	t.Run("negative grace is strict rotation", func(t *testing.T) {
		s, err := NewServer(Config{Issuer: "https://idp.example", RefreshGrace: -1}, full)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Config().RefreshGrace; got != 0 {
			t.Errorf("RefreshGrace = %v, want 0", got)
		}
	})
}

func TestIssueAccessToken(t *testing.T) {
	signer := &fakeSigner{}
	s := newTestServer(t, Config{AccessTokenTTL: 5 * time.Minute, SigningAlg: "ES256"}, Deps{Signer: signer})
	authTime := testNow.Add(-time.Hour)
	web := confidentialClient()
	tok, row, err := s.issueAccessToken(web, accessToken{
		Subject: "user-1", ClientID: "web", GrantID: "grant-1", Scopes: []string{"openid", "profile"}, AuthTime: authTime,
	}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if tok == "" {
		t.Fatal("empty token")
	}
	// A JWT needs no row: issuing it touches no database.
	if row != nil {
		t.Errorf("JWT access token came with a row to store: %+v", row)
	}
	// RFC 9068 §2.1: typ at+jwt.
	if signer.alg != "ES256" || signer.typ != "at+jwt" {
		t.Errorf("signed with alg %q typ %q, want ES256 at+jwt", signer.alg, signer.typ)
	}
	var c AccessTokenClaims
	if err := json.Unmarshal(signer.claims, &c); err != nil {
		t.Fatal(err)
	}
	// RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; scope as a
	// space-separated string.
	checks := []struct {
		name      string
		got, want any
	}{
		{"iss", c.Issuer, "https://idp.example"},
		{"sub", c.Subject, "user-1"},
		{"aud", []string(c.Audience), []string{"https://idp.example"}},
		{"client_id", c.ClientID, "web"},
		{"scope", c.Scope, "openid profile"},
		{"grant id", c.GrantID(), "grant-1"},
		{"iat", c.IssuedAt.Time().Unix(), testNow.Unix()},
		{"exp", c.ExpiresAt.Time().Unix(), testNow.Add(5 * time.Minute).Unix()},
		{"auth_time", c.AuthTime.Time().Unix(), authTime.Unix()},
	}
	for _, ch := range checks {
		t.Run(ch.name, func(t *testing.T) {
			if !jsonEqual(ch.got, ch.want) {
				t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
			}
		})
	}
	t.Run("jti is unique per token", func(t *testing.T) {
		if !strings.HasPrefix(c.ID, "grant-1.") || len(c.ID) <= len("grant-1.")+10 {
			t.Errorf("jti = %q, want grant-1.<random>", c.ID)
		}
	})
	t.Run("no personal data", func(t *testing.T) {
		var m map[string]any
		if err := json.Unmarshal(signer.claims, &m); err != nil {
			t.Fatal(err)
		}
		for k := range m {
			switch k {
			case "iss", "sub", "aud", "client_id", "scope", "jti", "iat", "exp", "auth_time":
			default:
				t.Errorf("unexpected claim %q", k)
			}
		}
	})
	t.Run("zero auth time omitted", func(t *testing.T) {
		if _, _, err := s.issueAccessToken(web, accessToken{Subject: "user-1", ClientID: "web", GrantID: "grant-1"}, testNow); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(signer.claims, []byte("auth_time")) || bytes.Contains(signer.claims, []byte(`"scope"`)) {
			t.Errorf("claims %s carry auth_time or an empty scope", signer.claims)
		}
	})
	t.Run("RFC 8707 resource audience", func(t *testing.T) {
		aud := []string{"https://api.example/", "https://other.example/"}
		if _, _, err := s.issueAccessToken(web, accessToken{Subject: "web", ClientID: "web", Audience: aud}, testNow); err != nil {
			t.Fatal(err)
		}
		var c AccessTokenClaims
		if err := json.Unmarshal(signer.claims, &c); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Audience, aud) {
			t.Errorf("aud = %q, want %q", c.Audience, aud)
		}
	})
	t.Run("machine token jti has no grant", func(t *testing.T) {
		if _, _, err := s.issueAccessToken(web, accessToken{Subject: "web", ClientID: "web"}, testNow); err != nil {
			t.Fatal(err)
		}
		var c AccessTokenClaims
		if err := json.Unmarshal(signer.claims, &c); err != nil {
			t.Fatal(err)
		}
		if c.GrantID() != "" || len(c.ID) < 16 {
			t.Errorf("machine token jti = %q, grant %q; want a random jti with no grant", c.ID, c.GrantID())
		}
	})
	t.Run("configured default audience", func(t *testing.T) {
		signer := &fakeSigner{}
		s := newTestServer(t, Config{AccessTokenAudience: "https://api.example"}, Deps{Signer: signer})
		if _, _, err := s.issueAccessToken(web, accessToken{Subject: "u", ClientID: "web", GrantID: "g"}, testNow); err != nil {
			t.Fatal(err)
		}
		var c AccessTokenClaims
		if err := json.Unmarshal(signer.claims, &c); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Audience, []string{"https://api.example"}) {
			t.Errorf("aud = %q, want the configured audience", c.Audience)
		}
	})
	t.Run("signer failure", func(t *testing.T) {
		s := newTestServer(t, Config{}, Deps{Signer: &fakeSigner{err: errors.New("no active key")}})
		if _, _, err := s.issueAccessToken(web, accessToken{Subject: "u", ClientID: "c", GrantID: "g"}, testNow); err == nil {
			t.Error("no error from a failing signer")
		}
	})
	t.Run("opaque client gets a stored reference token", func(t *testing.T) {
		signer := &fakeSigner{}
		s := newTestServer(t, Config{AccessTokenTTL: 7 * time.Minute}, Deps{Signer: signer})
		c := confidentialClient()
		c.Metadata.AccessTokenFormat = FormatOpaque
		tok, row, err := s.issueAccessToken(c, accessToken{
			Subject: "user-1", ClientID: "web", GrantID: "grant-1", Scopes: []string{"openid"}, AuthTime: authTime,
		}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if signer.calls != 0 {
			t.Errorf("an opaque token was signed %d times", signer.calls)
		}
		if looksLikeJWT(tok) || len(tok) != 43 {
			t.Errorf("opaque token %q: want 43 base64url characters, no dots", tok)
		}
		want := storage.AccessToken{
			TokenHash: secrets.Hash(tok), GrantID: "grant-1", ClientID: "web", Subject: "user-1",
			Scopes: []string{"openid"}, Audience: []string{testIssuer}, CreatedAt: testNow, ExpiresAt: testNow.Add(7 * time.Minute),
		}
		if row == nil || !jsonEqual(*row, want) {
			t.Errorf("row = %+v, want %+v", row, want)
		}
	})
	t.Run("opaque token without randomness", func(t *testing.T) {
		c := confidentialClient()
		c.Metadata.AccessTokenFormat = FormatOpaque
		s := newTestServer(t, Config{}, Deps{Signer: &fakeSigner{}, Rand: bytes.NewReader(nil)})
		if tok, row, err := s.issueAccessToken(c, accessToken{Subject: "u", ClientID: "web", GrantID: "g"}, testNow); err == nil || tok != "" || row != nil {
			t.Errorf("issueAccessToken = %q, %+v, %v; want an error", tok, row, err)
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestVerifyAccessJWT checks RFC 9068 §4 validation of JWT access tokens:
// verifyAccessJWT checks signature, typ, issuer and lifetime, and
// ValidateBearer, which serves this server's own resources, also the
// audience and the grant the token stands on.
func TestVerifyAccessJWT(t *testing.T) {
	const iss = "https://idp.example"
	claims := func(mod func(*AccessTokenClaims)) string {
		c := AccessTokenClaims{
			Issuer: iss, Subject: "user-1", Audience: jwt.Audience{iss}, ClientID: "web", ID: "g.r",
			IssuedAt: jwt.NewNumericDate(testNow), ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Minute)),
		}
		if mod != nil {
			mod(&c)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return fakeJWT("signed", b)
	}
	tests := []struct {
		name    string
		typ     any
		token   string
		now     time.Time
		wantErr bool
		// bearerRefuses: the token verifies, but is not one this server
		// accepts as a resource.
		bearerRefuses bool
	}{
		{name: "RFC 9068 §4 valid", typ: "at+jwt", token: claims(nil), now: testNow},
		{name: "RFC 9068 §4 typ application/at+jwt", typ: "application/at+jwt", token: claims(nil), now: testNow},
		{name: "typ case-insensitive", typ: "AT+JWT", token: claims(nil), now: testNow},
		{name: "one second before exp", typ: "at+jwt", token: claims(nil), now: testNow.Add(59 * time.Second)},

		{name: "RFC 9068 §4 typ JWT (an ID token)", typ: "JWT", token: claims(nil), now: testNow, wantErr: true},
		{name: "RFC 9068 §4 no typ", token: claims(nil), now: testNow, wantErr: true},
		{name: "typ not a string", typ: 1, token: claims(nil), now: testNow, wantErr: true},
		{name: "bad signature", typ: "at+jwt", token: "forged." + strings.TrimPrefix(claims(nil), "signed."), now: testNow, wantErr: true},
		{name: "payload not JSON", typ: "at+jwt", token: fakeJWT("signed", []byte("{")), now: testNow, wantErr: true},
		{name: "RFC 9068 §4 other issuer", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.Issuer = "https://evil.example" }), now: testNow, wantErr: true},
		// Audience is the caller's check: introspection reports any
		// audience; this server, as a resource, accepts only its own.
		{name: "RFC 9068 §4 other audience", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.Audience = jwt.Audience{"https://api.example"} }), now: testNow, bearerRefuses: true},
		// RFC 9068 §2.2: aud is required; null does not parse.
		{name: "no audience", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.Audience = nil }), now: testNow, wantErr: true},
		{name: "audience list with this server", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.Audience = jwt.Audience{"https://api.example", iss} }), now: testNow},
		// The jti names grant g, which belongs to client web and user-1.
		{name: "grant of another client", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.ClientID = "app" }), now: testNow, bearerRefuses: true},
		{name: "grant of another user", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.Subject = "user-2" }), now: testNow, bearerRefuses: true},
		{name: "unknown grant", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.ID = "nope.r" }), now: testNow, bearerRefuses: true},
		{name: "RFC 9068 §4 expired exactly at exp", typ: "at+jwt", token: claims(nil), now: testNow.Add(time.Minute), wantErr: true},
		{name: "expired", typ: "at+jwt", token: claims(nil), now: testNow.Add(time.Hour), wantErr: true},
		{name: "no exp", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.ExpiresAt = nil }), now: testNow, wantErr: true},
		{name: "no sub", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.Subject = "" }), now: testNow, wantErr: true},
		{name: "no jti", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.ID = "" }), now: testNow, wantErr: true},
		{name: "no client_id", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.ClientID = "" }), now: testNow, wantErr: true},

		// iat may be a little ahead (replicas' clocks differ), never more
		// than a minute.
		{name: "iat a minute ahead", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(11 * time.Minute))
		}), now: testNow},
		{name: "iat a minute and a second ahead", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute + time.Second))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(11 * time.Minute))
		}), now: testNow, wantErr: true},
		{name: "iat an hour ahead", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(2 * time.Hour))
		}), now: testNow, wantErr: true},
		{name: "no iat", typ: "at+jwt", token: claims(func(c *AccessTokenClaims) { c.IssuedAt = nil }), now: testNow},
	}
	// The grant g the tokens name, live: its user enabled, its login
	// session alive.
	st := newStore(t)
	createClients(t, st, confidentialClient(), publicClient())
	createUsers(t, st, storage.User{ID: "user-1"}, storage.User{ID: "user-2"})
	createSession(t, st, "sess-1", "user-1", testNow)
	createGrant(t, st, storage.Grant{ID: "g", UserID: "user-1", ClientID: "web", SessionID: "sess-1", Scopes: []string{"openid"}}, storage.IssuedTokens{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			s := newTestServer(t, Config{Issuer: iss}, Deps{Store: st, Signer: &fakeSigner{}, Verifier: fakeVerifier{typ: tt.typ}, IDTokens: fakeIDTokens{}, Now: func() time.Time { return now }})
			c, ok := s.verifyAccessJWT(tt.token, now)
			if ok == tt.wantErr {
				t.Fatalf("verifyAccessJWT ok = %v, want %v (claims %+v)", ok, !tt.wantErr, c)
			}
			if !ok && c.Subject != "" {
				t.Errorf("claims %+v returned with a refusal", c)
			}
			if ok && (c.Subject != "user-1" && c.Subject != "user-2" || c.GrantID() == "") {
				t.Errorf("claims = %+v", c)
			}

			info, e := bearer(t, s, tt.token)
			if tt.wantErr || tt.bearerRefuses {
				// RFC 6750 §3.1: invalid_token, 401.
				wantError(t, e, "invalid_token", 401)
				if info.Active || info.Subject != "" {
					t.Errorf("info %+v returned with an error", info)
				}
				return
			}
			if e != nil {
				t.Fatalf("ValidateBearer error = %v", e)
			}
			if !info.Active || info.Kind != KindAccessJWT || info.UserID != "user-1" || info.GrantID != "g" || info.ClientID != "web" {
				t.Errorf("info = %+v", info)
			}
		})
	}
}

// TestAccessTokenRealKeys signs and validates with the real keys.Manager:
// the signature and the typ header are checked for real, not by a stand-in.
func TestAccessTokenRealKeys(t *testing.T) {
	st := newStore(t)
	m := newKeys(t, st)
	createClients(t, st, confidentialClient())
	createUsers(t, st, storage.User{ID: "user-1"})
	createSession(t, st, "sess-1", "user-1", testNow)
	for _, g := range []string{"grant-1", "g"} {
		createGrant(t, st, storage.Grant{ID: g, UserID: "user-1", ClientID: "web", SessionID: "sess-1", Scopes: []string{"openid"}}, storage.IssuedTokens{})
	}
	s := newTestServer(t, Config{}, Deps{Store: st, Signer: m, Verifier: m})
	tok, row, err := s.issueAccessToken(confidentialClient(), accessToken{
		Subject: "user-1", ClientID: "web", GrantID: "grant-1", Scopes: []string{"openid"}, AuthTime: testNow.Add(-time.Minute),
	}, testNow)
	if err != nil || row != nil {
		t.Fatalf("issueAccessToken: row %+v, %v", row, err)
	}
	sign := func(typ string, mod func(*AccessTokenClaims)) string {
		c := AccessTokenClaims{
			Issuer: testIssuer, Subject: "user-1", Audience: jwt.Audience{testIssuer}, ClientID: "web", ID: "g.r",
			IssuedAt: jwt.NewNumericDate(testNow), ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Minute)),
		}
		if mod != nil {
			mod(&c)
		}
		tok, err := m.Sign(keys.RS256, typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Change one character in the middle of the signature to another
	// base64url character: well-formed, wrong signature.
	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)

	tests := []struct {
		name          string
		token         string
		wantErr       bool
		bearerRefuses bool
	}{
		{name: "RFC 9068 issued access token", token: tok},
		{name: "signed at+jwt", token: sign(AccessTokenType, nil)},
		{name: "tampered signature", token: tampered, wantErr: true},
		{name: "payload of another token", token: parts[0] + "." + strings.Split(sign(AccessTokenType, nil), ".")[1] + "." + parts[2], wantErr: true},
		{name: "RFC 9068 §4 ID token (typ JWT) with access token claims", token: sign("JWT", nil), wantErr: true},
		{name: "iat more than a minute ahead", token: sign(AccessTokenType, func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(2 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(12 * time.Minute))
		}), wantErr: true},
		{name: "expired", token: sign(AccessTokenType, func(c *AccessTokenClaims) { c.ExpiresAt = jwt.NewNumericDate(testNow) }), wantErr: true},
		{name: "not a JWS", token: "not.a.jws", wantErr: true},
		{name: "RFC 8707 token for another resource", token: sign(AccessTokenType, func(c *AccessTokenClaims) {
			c.Audience = jwt.Audience{"https://api.example/"}
		}), bearerRefuses: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := s.verifyAccessJWT(tt.token, testNow)
			if ok == tt.wantErr {
				t.Fatalf("verifyAccessJWT ok = %v, want %v", ok, !tt.wantErr)
			}
			if ok && (c.Subject != "user-1" || c.ClientID != "web") {
				t.Errorf("claims = %+v", c)
			}
			info, e := bearer(t, s, tt.token)
			if tt.wantErr || tt.bearerRefuses {
				wantError(t, e, "invalid_token", 401)
				return
			}
			if e != nil {
				t.Fatalf("ValidateBearer error = %v", e)
			}
			if !info.Active || info.Subject != "user-1" || info.ClientID != "web" {
				t.Errorf("info = %+v", info)
			}
		})
	}
}
