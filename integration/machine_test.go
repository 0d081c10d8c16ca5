package integration

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// TestClientCredentials: RFC 6749 §4.4 through x/oauth2's
// clientcredentials package. A machine token is an RFC 9068 JWT whose
// subject is the client, with no refresh token; its scope is limited to
// the client's; its audience is the issuer unless a registered resource
// (RFC 8707) is asked for.
func TestClientCredentials(t *testing.T) {
	s := newTestServer(t)
	m := s.newMachine(t, "Batch", "")

	t.Run("default: every registered scope, audience the issuer", func(t *testing.T) {
		tok := m.token(t, s)
		if tok.RefreshToken != "" {
			t.Error("a machine token came with a refresh token (RFC 6749 §4.4.3: it must not)")
		}
		if tok.TokenType != "Bearer" {
			t.Errorf("token_type = %q", tok.TokenType)
		}
		if got := tok.Extra("scope"); got != "invoices:read invoices:write" {
			t.Errorf("response scope = %v", got)
		}
		if d := time.Until(tok.Expiry); d < 9*time.Minute || d > 11*time.Minute {
			t.Errorf("expires in %v, want about 10 minutes", d)
		}
		header, claims := jwtParts(t, tok.AccessToken)
		if header["typ"] != "at+jwt" || header["alg"] != "RS256" || header["kid"] == nil {
			t.Errorf("header = %v, want an RFC 9068 at+jwt", header)
		}
		if claims["sub"] != m.ID || claims["client_id"] != m.ID {
			t.Errorf("sub = %v, client_id = %v; want both %s", claims["sub"], claims["client_id"], m.ID)
		}
		if claims["scope"] != "invoices:read invoices:write" {
			t.Errorf("scope claim = %v", claims["scope"])
		}
		if aud := audience(claims["aud"]); len(aud) != 1 || aud[0] != s.Issuer {
			t.Errorf("aud = %v, want [%s]", aud, s.Issuer)
		}
		if claims["iss"] != s.Issuer {
			t.Errorf("iss = %v", claims["iss"])
		}
		iat, _ := claims["iat"].(float64)
		exp, _ := claims["exp"].(float64)
		if int64(iat) != s.Clock.Now().Unix() || exp-iat != 600 {
			t.Errorf("iat = %v exp = %v, want iat now (%d) and a 600 s lifetime", iat, exp, s.Clock.Now().Unix())
		}
		if jti, _ := claims["jti"].(string); jti == "" || strings.Contains(jti, ".") {
			t.Errorf("jti = %q, want a random id with no grant part", jti)
		}
		if _, err := verifyLocally(t.Context(), s, tok.AccessToken); err != nil {
			t.Errorf("the token does not verify against the JWKS: %v", err)
		}
	})

	t.Run("narrowed scope", func(t *testing.T) {
		tok := m.token(t, s, "invoices:read")
		_, claims := jwtParts(t, tok.AccessToken)
		if claims["scope"] != "invoices:read" || tok.Extra("scope") != "invoices:read" {
			t.Errorf("scope claim %v, response %v; want invoices:read", claims["scope"], tok.Extra("scope"))
		}
	})

	for _, scope := range [][]string{{"invoices:delete"}, {"invoices:read", "invoices:delete"}, {"openid"}, {"invoices:read", "offline_access"}, {"profile"}} {
		t.Run("scope "+strings.Join(scope, "+")+" is invalid_scope", func(t *testing.T) {
			_, err := m.config(s, scope...).Token(t.Context())
			if got := retrieveErrorCode(t, err); got != "invalid_scope" {
				t.Errorf("error %q, want invalid_scope", got)
			}
		})
	}

	t.Run("resource chooses the audience", func(t *testing.T) {
		cfg := m.config(s, "invoices:read")
		cfg.EndpointParams = url.Values{"resource": {"https://api.example.com"}}
		tok, err := cfg.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		_, claims := jwtParts(t, tok.AccessToken)
		if aud := audience(claims["aud"]); len(aud) != 1 || aud[0] != "https://api.example.com" {
			t.Errorf("aud = %v, want [https://api.example.com]", aud)
		}
	})

	for name, resource := range map[string]string{
		"unlisted resource":        "https://other.example.com",
		"listed resource, altered": "https://api.example.com/",
		"relative resource":        "/api",
		"resource with a fragment": "https://api.example.com#x",
	} {
		t.Run(name+" is invalid_target", func(t *testing.T) {
			cfg := m.config(s)
			cfg.EndpointParams = url.Values{"resource": {resource}}
			_, err := cfg.Token(t.Context())
			if got := retrieveErrorCode(t, err); got != "invalid_target" {
				t.Errorf("error %q, want invalid_target", got)
			}
		})
	}

	t.Run("wrong secret is invalid_client", func(t *testing.T) {
		_, err := machine{ID: m.ID, Secret: "wrong"}.config(s).Token(t.Context())
		if got := retrieveErrorCode(t, err); got != "invalid_client" {
			t.Errorf("error %q, want invalid_client", got)
		}
	})

	t.Run("client without the grant is unauthorized_client", func(t *testing.T) {
		web := s.newApp(t, "Web app", `"skip_consent":true`)
		_, err := machine{ID: web.ID, Secret: web.Secret}.config(s).Token(t.Context())
		if got := retrieveErrorCode(t, err); got != "unauthorized_client" {
			t.Errorf("error %q, want unauthorized_client", got)
		}
	})
}

// TestClientCredentialsPublicClient: RFC 6749 §4.4 — confidential clients
// only. A public client cannot register for the grant, and one that asks
// for it anyway (without the grant, or with a stored row that has it) is
// unauthorized_client.
func TestClientCredentialsPublicClient(t *testing.T) {
	s := newTestServer(t)
	md, err := clients.ParseMetadata(strings.NewReader(`{"client_name":"CLI","token_endpoint_auth_method":"none",` + machineMetadata + `}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.reg.Register(t.Context(), md)
	var re *clients.RegistrationError
	if !errors.As(err, &re) || re.Code != clients.CodeInvalidClientMetadata {
		t.Errorf("registering a public client_credentials client: %v, want invalid_client_metadata", err)
	}

	pubID, _ := s.registerClient(t, `{"token_endpoint_auth_method":"none","redirect_uris":["`+appCallback+`"]}`)
	// A row written before registration checked this (or by hand).
	now := s.Clock.Now().UTC().Truncate(time.Microsecond)
	legacy := storage.Client{ID: "legacy-public-machine", CreatedAt: now, UpdatedAt: now, Metadata: storage.ClientMetadata{
		ClientName: "Legacy", GrantTypes: []string{"client_credentials"}, ResponseTypes: []string{},
		TokenEndpointAuthMethod: "none", Scope: "invoices:read", ApplicationType: "web", AccessTokenFormat: "jwt",
	}}
	if err := s.Store.CreateClient(t.Context(), legacy); err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]string{"registered public client": pubID, "stored public client with the grant": legacy.ID} {
		t.Run(name, func(t *testing.T) {
			cfg := machine{ID: id}.config(s)
			cfg.AuthStyle = oauth2.AuthStyleInParams // client_id in the body, no secret
			_, err := cfg.Token(t.Context())
			if got := retrieveErrorCode(t, err); got != "unauthorized_client" {
				t.Errorf("error %q, want unauthorized_client", got)
			}
		})
	}
}

// TestOpaqueMachineTokens: a client registered with
// "access_token_format":"opaque" gets random reference tokens that only
// introspection can read, and that revocation ends at once.
func TestOpaqueMachineTokens(t *testing.T) {
	s := newTestServer(t)
	m := s.newMachine(t, "Opaque batch", `"access_token_format":"opaque"`)
	rs := s.newMachine(t, "Resource server", "").asApp()

	tok := m.token(t, s, "invoices:read")
	if strings.Contains(tok.AccessToken, ".") || len(tok.AccessToken) < 43 {
		t.Fatalf("opaque token %q: want a random string of at least 256 bits with no dots", tok.AccessToken)
	}
	if tok.RefreshToken != "" {
		t.Error("an opaque machine token came with a refresh token")
	}
	if tok.Extra("scope") != "invoices:read" {
		t.Errorf("response scope = %v", tok.Extra("scope"))
	}

	got := s.introspect(t, rs, tok.AccessToken)
	now := s.Clock.Now().Unix()
	want := map[string]any{
		"active": true, "scope": "invoices:read", "client_id": m.ID, "sub": m.ID,
		"token_type": "Bearer", "iss": s.Issuer, "iat": float64(now), "exp": float64(now + 600),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("introspection %s = %v, want %v", k, got[k], v)
		}
	}
	if aud := audience(got["aud"]); len(aud) != 1 || aud[0] != s.Issuer {
		t.Errorf("introspection aud = %v", got["aud"])
	}

	cfg := m.config(s)
	cfg.EndpointParams = url.Values{"resource": {"https://api.example.com"}}
	withAud, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if aud := audience(s.introspect(t, rs, withAud.AccessToken)["aud"]); len(aud) != 1 || aud[0] != "https://api.example.com" {
		t.Errorf("opaque token with resource: aud = %v", aud)
	}

	if r := s.revoke(t, m.asApp(), tok.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	s.assertInactive(t, rs, "revoked opaque machine token", tok.AccessToken)
	if !active(s.introspect(t, rs, withAud.AccessToken)) {
		t.Error("revoking one opaque token ended another")
	}
	s.Clock.Advance(10 * time.Minute)
	s.assertInactive(t, rs, "opaque machine token after 10 minutes", withAud.AccessToken)
}

// TestMachineTokensNeedNoDatabase: issuing a JWT machine token does no
// synchronous database work — the client comes from the in-process cache
// and the token is signed in memory — so it keeps working with the
// database gone. An opaque token is a database row, so without the
// database it is 503 temporarily_unavailable.
func TestMachineTokensNeedNoDatabase(t *testing.T) {
	s, w := newWatchedServer(t)
	jwtClient := s.newMachine(t, "JWT batch", "")
	opaque := s.newMachine(t, "Opaque batch", `"access_token_format":"opaque"`)
	// Let the cache take in the registrations, then warm it: one token
	// each.
	w.waitCacheRefreshed(t)
	jwtClient.token(t, s)
	opaque.token(t, s)

	if err := s.closeDatabase(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tok := jwtClient.token(t, s, "invoices:read")
		if _, claims := jwtParts(t, tok.AccessToken); claims["sub"] != jwtClient.ID {
			t.Errorf("token %d: sub = %v", i, claims["sub"])
		}
		if _, err := verifyLocally(t.Context(), s, tok.AccessToken); err != nil {
			t.Errorf("token %d issued without a database does not verify: %v", i, err)
		}
	}
	for _, path := range []string{"/jwks", "/.well-known/openid-configuration"} {
		if r := doRaw(t, mustGet(t, s.URL+path)); r.Status != http.StatusOK {
			t.Errorf("%s without a database: %d", path, r.Status)
		}
	}
	r := postForm(t, s.URL+"/token", url.Values{"grant_type": {"client_credentials"}}, opaque.ID, opaque.Secret)
	assertTokenError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	_, err := opaque.config(s).Token(t.Context())
	if got := retrieveErrorCode(t, err); got != "temporarily_unavailable" {
		t.Errorf("x/oauth2 sees %q, want temporarily_unavailable", got)
	}
}

// TestDeletedMachineClientIsRefused: a client deleted by another process
// (a second store handle on the same database, as idp clients delete
// opens) stops getting tokens once the cache has refreshed — within one
// ClientCacheInterval — on every replica.
func TestDeletedMachineClientIsRefused(t *testing.T) {
	dbURL := pgtest.NewDatabaseURL(t)
	w := newWatchedStore(openStore(t, dbURL))
	s := newTestServerOn(t, w, func(c *server.Config) { c.ClientCacheInterval = cacheInterval })
	// The replica gets a store of its own, so each cache can be watched.
	w2 := newWatchedStore(openStore(t, dbURL))
	other := startServer(t, w2, s.kek, s.Clock, s.Issuer, s.opts)

	m := s.newMachine(t, "Doomed batch", "")
	keep := s.newMachine(t, "Surviving batch", "")
	w.waitCacheRefreshed(t)
	w2.waitCacheRefreshed(t)
	for _, srv := range []*testServer{s, other} {
		m.token(t, srv) // now cached on both replicas
	}

	cli := clients.New(openStore(t, dbURL), clients.Options{})
	deleted := time.Now()
	if err := cli.Delete(t.Context(), m.ID); err != nil {
		t.Fatal(err)
	}
	w.waitCacheRefreshed(t)
	w2.waitCacheRefreshed(t)
	delay := time.Since(deleted)
	for name, srv := range map[string]*testServer{"instance": s, "replica": other} {
		_, err := m.config(srv).Token(t.Context())
		if got := retrieveErrorCode(t, err); got != "invalid_client" {
			t.Errorf("%s: deleted client got %q, want invalid_client", name, got)
		}
		keep.token(t, srv)
	}
	t.Logf("deleted client refused on both replicas once each cache had refreshed (interval %v): %v after the delete", cacheInterval, delay)
}

// TestDeletedClientMachineTokenIntrospection: deleting a client ends its
// tokens at once. Its opaque tokens and its users' tokens go with its
// rows; its JWT machine tokens are judged by the client's existence, which
// must not be answered from the client cache (issue 3: never active: true
// from a stale cache). The cache is held between deletion and
// introspection so that the answer cannot depend on when it happens to
// refresh.
func TestDeletedClientMachineTokenIntrospection(t *testing.T) {
	dbURL := pgtest.NewDatabaseURL(t)
	w := newWatchedStore(openStore(t, dbURL))
	s := newTestServerOn(t, w, func(c *server.Config) { c.ClientCacheInterval = cacheInterval })
	m := s.newMachine(t, "Doomed batch", "")
	om := s.newMachine(t, "Doomed opaque batch", `"access_token_format":"opaque"`)
	a := s.newApp(t, "Doomed app", refreshGrants)
	rs := s.newMachine(t, "Resource server", "").asApp()
	user := s.loginWithRefresh(t, a, "ada@example.com")
	w.waitCacheRefreshed(t)
	jwt, opaque := m.token(t, s), om.token(t, s) // both clients now cached
	if !active(s.introspect(t, rs, jwt.AccessToken)) || !active(s.introspect(t, rs, opaque.AccessToken)) || !active(s.introspect(t, rs, user.AccessToken)) {
		t.Fatal("inactive before the deletion")
	}

	w.holdRefreshes(t)
	cli := clients.New(openStore(t, dbURL), clients.Options{})
	for _, id := range []string{m.ID, om.ID, a.ID} {
		if err := cli.Delete(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	s.assertInactive(t, rs, "opaque machine token of a deleted client, at once", opaque.AccessToken)
	s.assertInactive(t, rs, "a person's JWT of a deleted client, at once", user.AccessToken)
	s.assertInactive(t, rs, "JWT machine token of a deleted client, at once", jwt.AccessToken)
	w.releaseRefreshes()
	w.waitCacheRefreshed(t)
	s.assertInactive(t, rs, "JWT machine token of a deleted client, after a cache refresh", jwt.AccessToken)
}
