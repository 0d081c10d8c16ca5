package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
)

func TestAccessTokenClaimsGrantID(t *testing.T) {
	tests := []struct {
		name, jti, want string
	}{
		{"grant id and random part", "g-123.r4nd0m", "g-123"},
		{"only the first dot separates", "g.r.extra", "g"},
		{"no dot: whole jti", "g-123", "g-123"},
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

// fakeSigner records what it was asked to sign and returns the claims as
// JSON, so fakeVerifier can hand them back.
type fakeSigner struct {
	alg, typ string
	claims   []byte
	err      error
}

func (s *fakeSigner) Sign(alg, typ string, claims any) (string, error) {
	if s.err != nil {
		return "", s.err
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s.alg, s.typ, s.claims = alg, typ, b
	return "signed." + string(b), nil
}

// fakeVerifier accepts tokens made by fakeSigner and reports typ as the
// protected header's typ.
type fakeVerifier struct {
	typ any
}

func (v fakeVerifier) Verify(token string) ([]byte, jose.Header, error) {
	payload, ok := strings.CutPrefix(token, "signed.")
	if !ok {
		return nil, jose.Header{}, errors.New("bad signature")
	}
	h := jose.Header{ExtraHeaders: map[jose.HeaderKey]any{}}
	if v.typ != nil {
		h.ExtraHeaders[jose.HeaderType] = v.typ
	}
	return []byte(payload), h, nil
}

type fakeIDTokens struct{}

func (fakeIDTokens) MintIDToken(context.Context, IDTokenRequest) (string, error) {
	return "id-token", nil
}

func TestNewServer(t *testing.T) {
	full := Deps{Store: newStore(t), Signer: &fakeSigner{}, Verifier: fakeVerifier{}, IDTokens: fakeIDTokens{}}
	tests := []struct {
		name    string
		cfg     Config
		deps    func(Deps) Deps
		wantErr bool
	}{
		{"complete", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { return d }, false},
		{"no issuer", Config{}, func(d Deps) Deps { return d }, true},
		{"no store", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.Store = nil; return d }, true},
		{"no signer", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.Signer = nil; return d }, true},
		{"no verifier", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.Verifier = nil; return d }, true},
		{"no ID token minter", Config{Issuer: "https://idp.example"}, func(d Deps) Deps { d.IDTokens = nil; return d }, true},
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
			AccessTokenAudience: "https://idp.example", SigningAlg: "RS256"}
		if got := s.Config(); got != want {
			t.Errorf("Config() = %+v, want %+v", got, want)
		}
	})
	t.Run("explicit values kept", func(t *testing.T) {
		cfg := Config{Issuer: "https://idp.example", AccessTokenTTL: time.Minute, CodeTTL: 5 * time.Second,
			AccessTokenAudience: "https://api.example", SigningAlg: "ES256"}
		s, err := NewServer(cfg, full)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Config(); got != cfg {
			t.Errorf("Config() = %+v, want %+v", got, cfg)
		}
	})
}

func TestMintAccessToken(t *testing.T) {
	signer := &fakeSigner{}
	s := newTestServer(t, Config{AccessTokenTTL: 5 * time.Minute, SigningAlg: "ES256"}, Deps{Signer: signer})
	authTime := testNow.Add(-time.Hour)
	tok, err := s.mintAccessToken("user-1", "web", "grant-1", []string{"openid", "profile"}, authTime, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if tok == "" {
		t.Fatal("empty token")
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
		if _, err := s.mintAccessToken("user-1", "web", "grant-1", nil, time.Time{}, testNow); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(signer.claims, []byte("auth_time")) || bytes.Contains(signer.claims, []byte(`"scope"`)) {
			t.Errorf("claims %s carry auth_time or an empty scope", signer.claims)
		}
	})
	t.Run("signer failure", func(t *testing.T) {
		s := newTestServer(t, Config{}, Deps{Signer: &fakeSigner{err: errors.New("no active key")}})
		if _, err := s.mintAccessToken("u", "c", "g", nil, time.Time{}, testNow); err == nil {
			t.Error("no error from a failing signer")
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestValidateAccessToken(t *testing.T) {
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
		return "signed." + string(b)
	}
	tests := []struct {
		name    string
		typ     any
		token   string
		now     time.Time
		wantErr bool
	}{
		{"RFC 9068 §4 valid", "at+jwt", claims(nil), testNow, false},
		{"RFC 9068 §4 typ application/at+jwt", "application/at+jwt", claims(nil), testNow, false},
		{"typ case-insensitive", "AT+JWT", claims(nil), testNow, false},
		{"one second before exp", "at+jwt", claims(nil), testNow.Add(59 * time.Second), false},

		{"RFC 9068 §4 typ JWT (an ID token)", "JWT", claims(nil), testNow, true},
		{"RFC 9068 §4 no typ", nil, claims(nil), testNow, true},
		{"typ not a string", 1, claims(nil), testNow, true},
		{"bad signature", "at+jwt", "forged." + strings.TrimPrefix(claims(nil), "signed."), testNow, true},
		{"payload not JSON", "at+jwt", "signed.{", testNow, true},
		{"RFC 9068 §4 other issuer", "at+jwt", claims(func(c *AccessTokenClaims) { c.Issuer = "https://evil.example" }), testNow, true},
		{"RFC 9068 §4 other audience", "at+jwt", claims(func(c *AccessTokenClaims) { c.Audience = jwt.Audience{"https://api.example"} }), testNow, true},
		{"RFC 9068 §4 expired exactly at exp", "at+jwt", claims(nil), testNow.Add(time.Minute), true},
		{"expired", "at+jwt", claims(nil), testNow.Add(time.Hour), true},
		{"no exp", "at+jwt", claims(func(c *AccessTokenClaims) { c.ExpiresAt = nil }), testNow, true},
		{"no sub", "at+jwt", claims(func(c *AccessTokenClaims) { c.Subject = "" }), testNow, true},
		{"no jti", "at+jwt", claims(func(c *AccessTokenClaims) { c.ID = "" }), testNow, true},

		// iat may be a little ahead (replicas' clocks differ), never more
		// than a minute.
		{"iat a minute ahead", "at+jwt", claims(func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(11 * time.Minute))
		}), testNow, false},
		{"iat a minute and a second ahead", "at+jwt", claims(func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Minute + time.Second))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(11 * time.Minute))
		}), testNow, true},
		{"iat an hour ahead", "at+jwt", claims(func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(time.Hour))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(2 * time.Hour))
		}), testNow, true},
		{"no iat", "at+jwt", claims(func(c *AccessTokenClaims) { c.IssuedAt = nil }), testNow, false},
	}
	st := newStore(t) // never touched: validation reads no storage
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			s := newTestServer(t, Config{Issuer: iss}, Deps{Store: st, Signer: &fakeSigner{}, Verifier: fakeVerifier{typ: tt.typ}, IDTokens: fakeIDTokens{}, Now: func() time.Time { return now }})
			c, e := s.ValidateAccessToken(tt.token)
			if tt.wantErr {
				// RFC 6750 §3.1: invalid_token, 401.
				wantError(t, e, "invalid_token", 401)
				if c.Subject != "" {
					t.Errorf("claims %+v returned with an error", c)
				}
				return
			}
			if e != nil {
				t.Fatalf("error = %v", e)
			}
			if c.Subject != "user-1" || c.GrantID() != "g" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

// TestAccessTokenRealKeys signs and validates with the real keys.Manager:
// the signature and the typ header are checked for real, not by a stand-in.
func TestAccessTokenRealKeys(t *testing.T) {
	st := newStore(t)
	m := newKeys(t, st)
	s := newTestServer(t, Config{}, Deps{Store: st, Signer: m, Verifier: m})
	tok, err := s.mintAccessToken("user-1", "web", "grant-1", []string{"openid"}, testNow.Add(-time.Minute), testNow)
	if err != nil {
		t.Fatal(err)
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
		name    string
		token   string
		wantErr bool
	}{
		{"RFC 9068 minted access token", tok, false},
		{"signed at+jwt", sign(AccessTokenType, nil), false},
		{"tampered signature", tampered, true},
		{"payload of another token", parts[0] + "." + strings.Split(sign(AccessTokenType, nil), ".")[1] + "." + parts[2], true},
		{"RFC 9068 §4 ID token (typ JWT) with access token claims", sign("JWT", nil), true},
		{"iat more than a minute ahead", sign(AccessTokenType, func(c *AccessTokenClaims) {
			c.IssuedAt = jwt.NewNumericDate(testNow.Add(2 * time.Minute))
			c.ExpiresAt = jwt.NewNumericDate(testNow.Add(12 * time.Minute))
		}), true},
		{"expired", sign(AccessTokenType, func(c *AccessTokenClaims) { c.ExpiresAt = jwt.NewNumericDate(testNow) }), true},
		{"not a JWS", "not.a.jws", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, e := s.ValidateAccessToken(tt.token)
			if tt.wantErr {
				wantError(t, e, "invalid_token", 401)
				return
			}
			if e != nil {
				t.Fatalf("error = %v", e)
			}
			if c.Subject != "user-1" || c.ClientID != "web" {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}
