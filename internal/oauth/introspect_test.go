package oauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
)

// TestHandleIntrospect: RFC 7662. Confidential clients only; access
// tokens are described to any of them, a refresh token only to its own
// client; inactive tokens say nothing but {"active": false}; a database
// that cannot answer is a 503, never a guess.
func TestHandleIntrospect(t *testing.T) {
	type env struct {
		f  *lifeFixture
		s  *Server
		in issued // user-1's sign-in to web, openid profile
	}
	rs := func(tok string) endpointCall {
		return endpointCall{auth: basic("rs", "rs-secret"), form: url.Values{"token": {tok}}}
	}
	exp := testNow.Add(10 * time.Minute).Unix()
	iat := testNow.Unix()
	inactive := map[string]any{"active": false}
	tests := []struct {
		name string
		// call returns the request, and the JSON body a 200 must carry
		// (nil: an error).
		call     func(t *testing.T, e env) (endpointCall, map[string]any)
		down     string // "store" or "all"
		status   int
		wantCode string
	}{
		{name: "RFC 7662 §2.2 JWT access token of a user", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return rs(e.in.AccessToken), map[string]any{
				"active": true, "scope": "openid profile", "client_id": "web", "sub": "user-1", "aud": []any{testIssuer},
				"iss": testIssuer, "token_type": "Bearer", "exp": exp, "iat": iat, "jti": jtiOf(t, e.s, e.in.AccessToken),
			}
		}},
		{name: "opaque access token of a user", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			tok := e.f.login(t, e.s, "opaque").AccessToken
			return rs(tok), map[string]any{
				"active": true, "scope": "openid profile", "client_id": "opaque", "sub": "user-1", "aud": []any{testIssuer},
				"iss": testIssuer, "token_type": "Bearer", "exp": exp, "iat": iat,
			}
		}},
		{name: "JWT machine token for a resource", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			tok := e.f.machineToken(t, e.s, "machine", "https://api.example/")
			return rs(tok), map[string]any{
				"active": true, "scope": "api:read api:write", "client_id": "machine", "sub": "machine", "aud": []any{"https://api.example/"},
				"iss": testIssuer, "token_type": "Bearer", "exp": exp, "iat": iat, "jti": jtiOf(t, e.s, tok),
			}
		}},
		{name: "the client introspecting its own access token", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			c := rs(e.in.AccessToken)
			c.auth = basic("web", "web-secret")
			return c, map[string]any{
				"active": true, "scope": "openid profile", "client_id": "web", "sub": "user-1", "aud": []any{testIssuer},
				"iss": testIssuer, "token_type": "Bearer", "exp": exp, "iat": iat, "jti": jtiOf(t, e.s, e.in.AccessToken),
			}
		}},
		{name: "RFC 7662 §4 refresh token, to its own client", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			c := rs(e.in.RefreshToken)
			c.auth = basic("web", "web-secret")
			return c, map[string]any{
				"active": true, "scope": "openid profile", "client_id": "web", "sub": "user-1",
				"iss": testIssuer, "token_type": "refresh_token", "exp": testNow.Add(14 * day).Unix(), "iat": iat,
			}
		}},
		{name: "RFC 7662 §4 refresh token, to another client", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return rs(e.in.RefreshToken), inactive
		}},
		{name: "RFC 7662 §2.2 revoked token says only active false", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			if err := e.f.db.RevokeGrant(t.Context(), e.in.grantID, testNow); err != nil {
				t.Fatal(err)
			}
			return rs(e.in.AccessToken), inactive
		}},
		{name: "expired token", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			e.f.clock.Advance(10 * time.Minute)
			return rs(e.in.AccessToken), inactive
		}},
		{name: "unknown token", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return rs("bm90LWEtdG9rZW4"), inactive
		}},
		{name: "ID token", status: 200, call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return rs(e.in.IDToken), inactive
		}},

		{name: "RFC 7662 §2.1 authentication required", status: 401, wantCode: "invalid_client", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return endpointCall{form: url.Values{"token": {e.in.AccessToken}}}, nil
		}},
		{name: "wrong client secret", status: 401, wantCode: "invalid_client", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return endpointCall{auth: basic("rs", "wrong"), form: url.Values{"token": {e.in.AccessToken}}}, nil
		}},
		{name: "RFC 7662 §2.1 public client may not introspect", status: 401, wantCode: "invalid_client", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return endpointCall{form: url.Values{"token": {e.in.AccessToken}, "client_id": {"spa"}}}, nil
		}},
		{name: "public client, its own refresh token", status: 401, wantCode: "invalid_client", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			tok := e.f.login(t, e.s, "spa").RefreshToken
			return endpointCall{form: url.Values{"token": {tok}, "client_id": {"spa"}}}, nil
		}},
		{name: "token missing", status: 400, wantCode: "invalid_request", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return endpointCall{auth: basic("rs", "rs-secret"), form: url.Values{}}, nil
		}},
		{name: "token repeated", status: 400, wantCode: "invalid_request", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return endpointCall{auth: basic("rs", "rs-secret"), form: url.Values{"token": {e.in.AccessToken, e.in.AccessToken}}}, nil
		}},
		{name: "GET", status: 400, wantCode: "invalid_request", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			c := rs(e.in.AccessToken)
			c.method = http.MethodGet
			return c, nil
		}},
		{name: "JSON body", status: 400, wantCode: "invalid_request", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			c := rs(e.in.AccessToken)
			c.contentType = "application/json"
			return c, nil
		}},
		{name: "database down", down: "store", status: 503, wantCode: "temporarily_unavailable", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return rs(e.in.AccessToken), nil
		}},
		{name: "database down, opaque token", down: "store", status: 503, wantCode: "temporarily_unavailable", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return rs(e.f.login(t, e.s, "opaque").AccessToken), nil
		}},
		{name: "database and client lookup down", down: "all", status: 503, wantCode: "temporarily_unavailable", call: func(t *testing.T, e env) (endpointCall, map[string]any) {
			return rs(e.in.AccessToken), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, Config{})
			e := env{f: f, s: s, in: f.login(t, s, "web")}
			call, want := tt.call(t, e)
			before := f.snapshot(t)
			switch tt.down {
			case "all":
				if err := f.clients.Close(); err != nil {
					t.Fatal(err)
				}
				fallthrough
			case "store":
				if err := f.store.Close(); err != nil {
					t.Fatal(err)
				}
			}

			w, body := call.do(t, s.HandleIntrospect, "/introspect")

			f.wantChanged(t, before)
			if tt.wantCode != "" {
				wantEndpointError(t, w, body, tt.status, tt.wantCode)
				return
			}
			if w.Code != tt.status || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("status %d, content type %q", w.Code, w.Header().Get("Content-Type"))
			}
			// JSON numbers decode as float64.
			wb, _ := json.Marshal(want)
			var wantBody map[string]any
			if err := json.Unmarshal(wb, &wantBody); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(body, wantBody) {
				t.Errorf("body\n got %v\nwant %v", body, wantBody)
			}
		})
	}
}

// TestValidateBearer: the check of an access token presented to this
// server as a resource (userinfo): active, an access token, and meant for
// this server's audience.
func TestValidateBearer(t *testing.T) {
	type env struct {
		f *lifeFixture
		s *Server
	}
	tests := []struct {
		name     string
		cfg      Config
		token    func(t *testing.T, e env) string
		wantCode string // "" accepted
		wantUser string // the info's UserID when accepted
	}{
		{name: "JWT access token of a user", token: func(t *testing.T, e env) string { return e.f.login(t, e.s, "web").AccessToken }, wantUser: "user-1"},
		{name: "opaque access token of a user", token: func(t *testing.T, e env) string { return e.f.login(t, e.s, "opaque").AccessToken }, wantUser: "user-1"},
		{name: "machine token with the default audience", token: func(t *testing.T, e env) string { return e.f.machineToken(t, e.s, "machine") }},
		{name: "RFC 8707 machine token for another resource", wantCode: "invalid_token", token: func(t *testing.T, e env) string {
			return e.f.machineToken(t, e.s, "machine", "https://api.example/")
		}},
		{name: "opaque machine token for another resource", wantCode: "invalid_token", token: func(t *testing.T, e env) string {
			return e.f.machineToken(t, e.s, "machine-opaque", "https://api.example/")
		}},
		{name: "machine token for two other resources", wantCode: "invalid_token", token: func(t *testing.T, e env) string {
			return e.f.machineToken(t, e.s, "machine", "https://api.example/", "https://other.example/v1")
		}},
		{name: "refresh token is no access token", wantCode: "invalid_token", token: func(t *testing.T, e env) string {
			return e.f.login(t, e.s, "web").RefreshToken
		}},
		{name: "refresh token of an opaque client", wantCode: "invalid_token", token: func(t *testing.T, e env) string {
			return e.f.login(t, e.s, "opaque").RefreshToken
		}},
		{name: "ID token", wantCode: "invalid_token", token: func(t *testing.T, e env) string { return e.f.login(t, e.s, "web").IDToken }},
		{name: "revoked grant", wantCode: "invalid_token", token: func(t *testing.T, e env) string {
			in := e.f.login(t, e.s, "web")
			if err := e.f.db.RevokeGrant(t.Context(), in.grantID, testNow); err != nil {
				t.Fatal(err)
			}
			return in.AccessToken
		}},
		{name: "expired", wantCode: "invalid_token", token: func(t *testing.T, e env) string {
			in := e.f.login(t, e.s, "web")
			e.f.clock.Advance(10 * time.Minute)
			return in.AccessToken
		}},
		{name: "configured audience", cfg: Config{AccessTokenAudience: "https://userinfo.example"}, wantUser: "user-1",
			token: func(t *testing.T, e env) string { return e.f.login(t, e.s, "web").AccessToken }},
		{name: "the issuer is not the configured audience", cfg: Config{AccessTokenAudience: "https://userinfo.example"}, wantCode: "invalid_token",
			token: func(t *testing.T, e env) string {
				in := e.f.login(t, e.s, "web")
				tok, err := e.f.keys.Sign(keys.RS256, AccessTokenType, AccessTokenClaims{
					Issuer: testIssuer, Subject: "user-1", Audience: jwt.Audience{testIssuer}, ClientID: "web", ID: in.grantID + ".r",
					IssuedAt: jwt.NewNumericDate(testNow), ExpiresAt: jwt.NewNumericDate(testNow.Add(time.Minute)),
				})
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}},
		{name: "database down", wantCode: "temporarily_unavailable", token: func(t *testing.T, e env) string {
			tok := e.f.login(t, e.s, "web").AccessToken
			if err := e.f.store.Close(); err != nil {
				t.Fatal(err)
			}
			return tok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			e := env{f, f.server(t, tt.cfg)}
			tok := tt.token(t, e)

			info, err := bearer(t, e.s, tok)

			switch tt.wantCode {
			case "":
				if err != nil || !info.Active || info.UserID != tt.wantUser || info.Kind == KindRefresh {
					t.Errorf("ValidateBearer = %+v, %v; want accepted for user %q", info, err, tt.wantUser)
				}
			case "temporarily_unavailable":
				wantUnavailable(t, err)
			default:
				// RFC 6750 §3.1
				wantError(t, err, tt.wantCode, 401)
				if info.Active {
					t.Errorf("info %+v with an error", info)
				}
			}
		})
	}
}
