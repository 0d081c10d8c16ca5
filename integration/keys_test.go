package integration

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/server"
)

// tokenHeader decodes a compact JWS header.
func tokenHeader(t testing.TB, token string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func getJWKS(t testing.TB, s *testServer) (body []byte, etag string) {
	t.Helper()
	resp, err := http.Get(s.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body, resp.Header.Get("ETag")
}

// TestRotationReachesOtherInstances: two instances on one Postgres; a
// rotation made through one (the CLI runs the same code) reaches the other
// through LISTEN/NOTIFY, which then signs with the new key and serves
// byte-identical JWKS.
func TestRotationReachesOtherInstances(t *testing.T) {
	a := newTestServer(t)
	b := a.replica(t)
	m := a.newMachine(t, "Batch", "")
	jwksA, etagA := getJWKS(t, a)
	if jwksB, etagB := getJWKS(t, b); string(jwksA) != string(jwksB) || etagA != etagB {
		t.Fatalf("instances serve different JWKS before the rotation")
	}
	before := tokenHeader(t, m.token(t, b).AccessToken)["kid"]

	c, err := a.Server.Keys().Rotate(t.Context(), keys.RS256, true)
	if err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	newKID := c.Promoted[0].ID
	if newKID == before {
		t.Fatal("rotation kept the kid")
	}
	// Bounded wait for the other instance; how long it took is reported,
	// not asserted.
	deadline := time.Now().Add(10 * time.Second)
	for tokenHeader(t, m.token(t, b).AccessToken)["kid"] != newKID {
		if time.Now().After(deadline) {
			t.Fatalf("instance b still signs with %v 10s after the rotation on a", before)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("instance b signed with the new key %v after the rotation on a", time.Since(rotated).Round(time.Millisecond))
	jwksA, etagA = getJWKS(t, a)
	jwksB, etagB := getJWKS(t, b)
	if string(jwksA) != string(jwksB) || etagA != etagB {
		t.Errorf("JWKS differ after the rotation:\n%s\n%s", jwksA, jwksB)
	}
	if !strings.Contains(string(jwksA), newKID) || !strings.Contains(string(jwksA), before.(string)) {
		t.Error("JWKS lacks the new active key or the retired one")
	}

	// A revocation reaches b the same way: its tokens fail at b at once.
	tok := m.token(t, b).AccessToken
	if _, err := a.Server.Keys().Revoke(t.Context(), newKID); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, _, err := b.Server.Keys().Verify(tok); errors.Is(err, keys.ErrUnknownKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("instance b still accepts the revoked key 10s later")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.assertInactive(t, m.asApp(), "token of a revoked key, introspected at b", tok)
}

// strictCache is a resource server that caches the JWKS exactly as long
// as Cache-Control max-age allows, on the server's clock, and never
// refetches early, not even for an unknown kid: the least forgiving
// verifier there is. Pre-publication is what keeps it working.
type strictCache struct {
	s       *testServer
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	expires time.Time
	fetches int
}

func (c *strictCache) verify(token string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.s.Clock.Now()
	if !now.Before(c.expires) {
		resp, err := http.Get(c.s.URL + "/jwks")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&c.set); err != nil {
			return err
		}
		maxAge, err := strconv.Atoi(strings.TrimPrefix(resp.Header.Get("Cache-Control"), "public, max-age="))
		if err != nil {
			return fmt.Errorf("Cache-Control %q: %v", resp.Header.Get("Cache-Control"), err)
		}
		c.expires = now.Add(time.Duration(maxAge) * time.Second)
		c.fetches++
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		return err
	}
	kid := jws.Signatures[0].Header.KeyID
	found := c.set.Key(kid)
	if len(found) == 0 {
		return fmt.Errorf("unknown kid %s", kid)
	}
	_, err = jws.Verify(found[0])
	return err
}

// TestResourceServersAcrossScheduledRotations runs the server's clock
// through 65 days — two scheduled rotations of every algorithm — with two
// resource servers verifying every token: go-oidc's remote key set (which
// refetches on an unknown kid) and a strict max-age cache (which never
// does). Neither may fail once. Each step the strict cache refreshes, the
// clock moves a minute, maintenance runs (as Run does every minute), and a
// new token must verify from the minute-old cache.
func TestResourceServersAcrossScheduledRotations(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.AccessTokenSigningAlg = keys.ES256 })
	m := s.newMachine(t, "Batch", "")
	ctx := oidc.ClientContext(t.Context(), &http.Client{Timeout: 10 * time.Second})
	remote := oidc.NewVerifier(s.Issuer, oidc.NewRemoteKeySet(ctx, s.Issuer+"/jwks"), &oidc.Config{
		SkipClientIDCheck: true, Now: s.Clock.Now, SupportedSigningAlgs: []string{oidc.ES256},
	})
	strict := &strictCache{s: s}
	kids := map[string]bool{}
	const step = 6 * time.Hour
	for elapsed := time.Duration(0); elapsed < 65*24*time.Hour; elapsed += step {
		s.Clock.Advance(step - time.Minute)
		previous := m.token(t, s).AccessToken
		if err := strict.verify(previous); err != nil {
			t.Fatalf("day %.1f, before maintenance: %v", elapsed.Hours()/24, err)
		}
		s.Clock.Advance(time.Minute)
		if _, err := s.Server.Keys().Maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
		tok := m.token(t, s).AccessToken
		kids[tokenHeader(t, tok)["kid"].(string)] = true
		if err := strict.verify(tok); err != nil {
			t.Fatalf("day %.1f: strict cache: %v", elapsed.Hours()/24, err)
		}
		if _, err := remote.Verify(ctx, tok); err != nil {
			t.Fatalf("day %.1f: go-oidc: %v", elapsed.Hours()/24, err)
		}
		// The token of a minute ago (still unexpired) verifies too, even
		// if its key has just been retired.
		if _, err := remote.Verify(ctx, previous); err != nil {
			t.Fatalf("day %.1f: go-oidc, token from before maintenance: %v", elapsed.Hours()/24, err)
		}
		if err := strict.verify(previous); err != nil {
			t.Fatalf("day %.1f: strict cache, token from before maintenance: %v", elapsed.Hours()/24, err)
		}
	}
	if len(kids) != 3 {
		t.Errorf("tokens were signed by %d keys over 65 days, want 3 (two rotations)", len(kids))
	}
	t.Logf("strict cache fetched the JWKS %d times; %d signing keys seen", strict.fetches, len(kids))

	// The control: a forced rotation makes a key that was never published
	// sign at once, and the strict cache rejects its token until it
	// refetches. This is why rotate --force is for emergencies.
	s.Clock.Advance(time.Minute)
	if err := strict.verify(m.token(t, s).AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Server.Keys().Rotate(t.Context(), keys.ES256, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Server.Keys().Rotate(t.Context(), keys.ES256, true); err != nil {
		t.Fatal(err)
	}
	if err := strict.verify(m.token(t, s).AccessToken); err == nil || !strings.Contains(err.Error(), "unknown kid") {
		t.Errorf("strict cache after two forced rotations: %v, want unknown kid", err)
	}
	if _, err := remote.Verify(ctx, m.token(t, s).AccessToken); err != nil {
		t.Errorf("go-oidc refetches on an unknown kid, yet: %v", err)
	}
}

// TestIDTokenAlgorithmPerClient: clients choose their ID token's algorithm
// with id_token_signed_response_alg; go-oidc verifies it (signature,
// nonce, at_hash with the algorithm's hash).
func TestIDTokenAlgorithmPerClient(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.SigningAlgorithms = []string{keys.RS256, keys.ES256, keys.EdDSA} })
	s.createUser(t, "ada@example.com", testPassword)
	for _, alg := range []string{"", keys.RS256, keys.ES256, keys.EdDSA} {
		t.Run("alg="+alg, func(t *testing.T) {
			extra := `"skip_consent":true`
			if alg != "" {
				extra += `,"id_token_signed_response_alg":"` + alg + `"`
			}
			a := s.newApp(t, "App "+alg, extra)
			tok, _ := s.fullLogin(t, newBrowser(t, s.Issuer), a, "ada@example.com")
			want := alg
			if want == "" {
				want = keys.RS256
			}
			idt := tok.Extra("id_token").(string)
			if got := tokenHeader(t, idt)["alg"]; got != want {
				t.Errorf("ID token alg = %v, want %s", got, want)
			}
			// Access tokens keep the server's algorithm.
			if got := tokenHeader(t, tok.AccessToken)["alg"]; got != keys.RS256 {
				t.Errorf("access token alg = %v, want RS256", got)
			}
		})
	}

	// A client registered for an algorithm the server has no key for
	// gets server_error at the token endpoint, and the server keeps
	// serving everyone else.
	narrow := newTestServer(t) // RS256 and ES256 only
	ed := narrow.newApp(t, "Ed", `"skip_consent":true,"id_token_signed_response_alg":"EdDSA"`)
	code, ar := codeFor(t, narrow.signedIn(t, "ada@example.com"), ed)
	r := postForm(t, narrow.URL+"/token", tokenForm(code, ed.RedirectURI, ar.Verifier), ed.ID, ed.Secret)
	if r.Status != http.StatusInternalServerError || !strings.Contains(r.Body, `"server_error"`) {
		t.Errorf("token request of a client with an unconfigured ID token alg: %d %s", r.Status, r.Body)
	}
	rs := narrow.newApp(t, "RS", `"skip_consent":true`)
	narrow.fullLogin(t, newBrowser(t, narrow.Issuer), rs, "ada@example.com")

	var d struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	resp, err := http.Get(s.Issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Algs, ",") != "RS256,ES256,EdDSA" {
		t.Errorf("discovery id_token_signing_alg_values_supported = %v", d.Algs)
	}
}
