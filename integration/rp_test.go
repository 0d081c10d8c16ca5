package integration

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// relyingParty is an app using Gatehouse through standard libraries.
type relyingParty struct {
	t        testing.TB
	issuer   string
	provider *oidc.Provider
	config   oauth2.Config
	verifier *oidc.IDTokenVerifier
	ctx      context.Context
	now      func() time.Time // the server's (test) clock
}

// newRP discovers the provider with go-oidc and configures x/oauth2.
// secret empty means a public client (credentials in the body, PKCE).
func newRP(t testing.TB, s *testServer, clientID, secret, redirectURI string, scopes ...string) *relyingParty {
	t.Helper()
	// The discovery and key fetches use a client of their own, so they
	// never carry the browser's cookies.
	ctx := oidc.ClientContext(t.Context(), &http.Client{Timeout: 10 * time.Second})
	p, err := oidc.NewProvider(ctx, s.Issuer)
	if err != nil {
		t.Fatalf("discover %s: %v", s.Issuer, err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	ep := p.Endpoint()
	if secret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	} else {
		ep.AuthStyle = oauth2.AuthStyleInHeader
	}
	return &relyingParty{
		t:        t,
		issuer:   s.Issuer,
		provider: p,
		ctx:      ctx,
		now:      s.Clock.Now,
		config: oauth2.Config{
			ClientID: clientID, ClientSecret: secret, Endpoint: ep,
			RedirectURL: redirectURI, Scopes: scopes,
		},
		// The server runs on the test's clock; so must the verifier.
		verifier: p.Verifier(&oidc.Config{ClientID: clientID, Now: s.Clock.Now}),
	}
}

// authRequest is one authorization request the RP makes.
type authRequest struct {
	URL      string
	State    string
	Nonce    string
	Verifier string
}

func (rp *relyingParty) authURL(opts ...oauth2.AuthCodeOption) authRequest {
	ar := authRequest{
		State:    oauth2.GenerateVerifier()[:16],
		Nonce:    oauth2.GenerateVerifier()[:16],
		Verifier: oauth2.GenerateVerifier(),
	}
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(ar.Verifier), oidc.Nonce(ar.Nonce)}, opts...)
	ar.URL = rp.config.AuthCodeURL(ar.State, opts...)
	return ar
}

// codeFrom checks an authorization response and returns its code.
func (rp *relyingParty) codeFrom(ar authRequest, callback *url.URL) string {
	rp.t.Helper()
	if callback == nil {
		rp.t.Fatal("no redirect to the app")
	}
	q := callback.Query()
	if e := q.Get("error"); e != "" {
		rp.t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if got := q.Get("state"); got != ar.State {
		rp.t.Fatalf("state = %q, want %q", got, ar.State)
	}
	// RFC 9207: the response names its issuer.
	if got := q.Get("iss"); got != rp.issuer {
		rp.t.Fatalf("iss = %q, want %q", got, rp.issuer)
	}
	return q.Get("code")
}

// exchange redeems a code with x/oauth2 and verifies the ID token with
// go-oidc, including the nonce and at_hash.
func (rp *relyingParty) exchange(ar authRequest, code string) (*oauth2.Token, *oidc.IDToken) {
	rp.t.Helper()
	tok, err := rp.config.Exchange(rp.ctx, code, oauth2.VerifierOption(ar.Verifier))
	if err != nil {
		rp.t.Fatalf("exchange: %v", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return tok, nil
	}
	idt, err := rp.verifier.Verify(rp.ctx, raw)
	if err != nil {
		rp.t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != ar.Nonce {
		rp.t.Fatalf("nonce = %q, want %q", idt.Nonce, ar.Nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		rp.t.Fatalf("at_hash: %v", err)
	}
	return tok, idt
}
