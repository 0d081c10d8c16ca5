package oauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
)

// TestRevoke: RFC 7009. A refresh token or a user's JWT access token
// revokes its whole grant; an opaque access token only itself; a machine
// JWT goes on the denylist. Another client's token, or no token of ours,
// changes nothing.
func TestRevoke(t *testing.T) {
	type env struct {
		f *lifeFixture
		s *Server
	}
	tests := []struct {
		name string
		as   string // the client revoking
		// token makes the token to revoke and names the rows revoking it
		// must change (nothing else may).
		token func(t *testing.T, e env) (string, []string)
		// after checks more, once the token is revoked.
		after func(t *testing.T, e env, tok string)
	}{
		{name: "RFC 7009 §2.1 refresh token revokes its grant", as: "web", token: func(t *testing.T, e env) (string, []string) {
			in := e.f.login(t, e.s, "web")
			return in.RefreshToken, []string{grantKey(in.grantID)}
		}},
		{name: "spent refresh token still revokes its family", as: "web", token: func(t *testing.T, e env) (string, []string) {
			in := e.f.login(t, e.s, "web")
			e.f.mustRefresh(t, e.s, "web", in.RefreshToken)
			e.f.clock.Advance(time.Minute)
			return in.RefreshToken, []string{grantKey(in.grantID)}
		}},
		{name: "public client's refresh token", as: "spa", token: func(t *testing.T, e env) (string, []string) {
			in := e.f.login(t, e.s, "spa")
			return in.RefreshToken, []string{grantKey(in.grantID)}
		}},
		{name: "RFC 7009 §2.1 refresh token of another client", as: "other", token: func(t *testing.T, e env) (string, []string) {
			return e.f.login(t, e.s, "web").RefreshToken, nil
		}},
		{name: "refresh token of an already revoked grant", as: "web", token: func(t *testing.T, e env) (string, []string) {
			in := e.f.login(t, e.s, "web")
			if err := e.f.db.RevokeGrant(t.Context(), in.grantID, testNow); err != nil {
				t.Fatal(err)
			}
			e.f.clock.Advance(time.Minute) // a second revocation would move revoked_at
			return in.RefreshToken, nil
		}},
		{name: "JWT access token of a user revokes its grant", as: "web", token: func(t *testing.T, e env) (string, []string) {
			in := e.f.login(t, e.s, "web")
			return in.AccessToken, []string{grantKey(in.grantID)}
		}},
		{name: "JWT access token of another client", as: "other", token: func(t *testing.T, e env) (string, []string) {
			return e.f.login(t, e.s, "web").AccessToken, nil
		}},
		{name: "expired JWT access token", as: "web", token: func(t *testing.T, e env) (string, []string) {
			in := e.f.login(t, e.s, "web")
			e.f.clock.Advance(10 * time.Minute)
			return in.AccessToken, nil
		}},
		{name: "ID token", as: "web", token: func(t *testing.T, e env) (string, []string) {
			return e.f.login(t, e.s, "web").IDToken, nil
		}},
		{name: "opaque access token revokes only itself", as: "opaque", token: func(t *testing.T, e env) (string, []string) {
			in := e.f.login(t, e.s, "opaque")
			return in.AccessToken, []string{accessKey(in.AccessToken)}
		}, after: func(t *testing.T, e env, tok string) {
			at, err := e.f.db.GetAccessToken(t.Context(), secrets.Hash(tok))
			if err != nil || at.RevokedAt == nil || !at.RevokedAt.Equal(e.f.clock.Now()) {
				t.Errorf("revoked token %+v, %v; want revoked at %v", at, err, e.f.clock.Now())
			}
		}},
		{name: "opaque access token of another client", as: "web", token: func(t *testing.T, e env) (string, []string) {
			return e.f.login(t, e.s, "opaque").AccessToken, nil
		}},
		{name: "JWT machine token goes on the denylist", as: "machine", token: func(t *testing.T, e env) (string, []string) {
			tok := e.f.machineToken(t, e.s, "machine")
			return tok, []string{jwtKey(jtiOf(t, e.s, tok))}
		}, after: func(t *testing.T, e env, tok string) {
			// Denied until the token's own expiry, no longer.
			if got, want := e.f.snapshot(t)[jwtKey(jtiOf(t, e.s, tok))], "expires_at="+microStr(testNow.Add(10*time.Minute)); got != want {
				t.Errorf("denylist entry %q, want %q", got, want)
			}
			// The client's other tokens are untouched.
			if info, err := e.s.Inspect(t.Context(), e.f.machineToken(t, e.s, "machine")); err != nil || !info.Active {
				t.Errorf("another token of the client: %+v, %v", info, err)
			}
		}},
		{name: "JWT machine token of another client", as: "machine-2", token: func(t *testing.T, e env) (string, []string) {
			return e.f.machineToken(t, e.s, "machine"), nil
		}},
		{name: "opaque machine token", as: "machine-opaque", token: func(t *testing.T, e env) (string, []string) {
			tok := e.f.machineToken(t, e.s, "machine-opaque")
			return tok, []string{accessKey(tok)}
		}},
		{name: "opaque machine token of another client", as: "machine", token: func(t *testing.T, e env) (string, []string) {
			return e.f.machineToken(t, e.s, "machine-opaque"), nil
		}},
		{name: "RFC 7009 §2.2 unknown token", as: "web", token: func(t *testing.T, e env) (string, []string) {
			e.f.login(t, e.s, "web")
			return "bm90LWEtdG9rZW4", nil
		}},
		{name: "not a JWT", as: "web", token: func(t *testing.T, e env) (string, []string) { return "a.b.c", nil }},
		{name: "oversized", as: "web", token: func(t *testing.T, e env) (string, []string) {
			return strings.Repeat("A", maxParamLen+1), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			e := env{f, f.server(t, Config{})}
			tok, want := tt.token(t, e)
			infoBefore, err := e.s.Inspect(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			client, err := f.db.GetClient(t.Context(), tt.as)
			if err != nil {
				t.Fatal(err)
			}
			before := f.snapshot(t)

			if err := e.s.Revoke(t.Context(), client, tok); err != nil {
				t.Fatalf("Revoke: %v", err)
			}

			f.wantChanged(t, before, want...)
			infoAfter, err := e.s.Inspect(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if wantActive := infoBefore.Active && len(want) == 0; infoAfter.Active != wantActive {
				t.Errorf("after revocation the token is active=%v, want %v", infoAfter.Active, wantActive)
			}
			for _, k := range want {
				if id, ok := strings.CutPrefix(k, "grant "); ok {
					if g := f.grant(t, id); g.RevokedAt == nil || !g.RevokedAt.Equal(f.clock.Now()) {
						t.Errorf("grant revoked at %v, want %v", g.RevokedAt, f.clock.Now())
					}
				}
			}
			if tt.after != nil {
				tt.after(t, e, tok)
			}
		})
	}
}

// TestRevokeDatabaseDown: a revocation that cannot reach the database is
// an error, never a silent success.
func TestRevokeDatabaseDown(t *testing.T) {
	tests := []struct {
		name  string
		as    string
		token func(t *testing.T, f *lifeFixture, s *Server) string
	}{
		{"refresh token", "web", func(t *testing.T, f *lifeFixture, s *Server) string { return f.login(t, s, "web").RefreshToken }},
		{"JWT access token", "web", func(t *testing.T, f *lifeFixture, s *Server) string { return f.login(t, s, "web").AccessToken }},
		{"opaque access token", "opaque", func(t *testing.T, f *lifeFixture, s *Server) string { return f.login(t, s, "opaque").AccessToken }},
		{"JWT machine token", "machine", func(t *testing.T, f *lifeFixture, s *Server) string { return f.machineToken(t, s, "machine") }},
		{"opaque machine token", "machine-opaque", func(t *testing.T, f *lifeFixture, s *Server) string {
			return f.machineToken(t, s, "machine-opaque")
		}},
		{"unknown opaque token", "web", func(t *testing.T, f *lifeFixture, s *Server) string { return "bm90LWEtdG9rZW4" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, Config{})
			tok := tt.token(t, f, s)
			client, err := f.db.GetClient(t.Context(), tt.as)
			if err != nil {
				t.Fatal(err)
			}
			before := f.snapshot(t)
			if err := f.store.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Revoke(t.Context(), client, tok); err == nil {
				t.Error("Revoke with the database down: no error")
			}
			f.wantChanged(t, before)
		})
	}
}

// endpointCall is a form POST to one of the authenticated endpoints.
type endpointCall struct {
	method      string // default POST
	contentType string // default form
	auth        string // Authorization header
	form        url.Values
}

func (c endpointCall) do(t *testing.T, h http.HandlerFunc, path string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	method := c.method
	if method == "" {
		method = http.MethodPost
	}
	r := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(c.form.Encode()))
	ct := c.contentType
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	r.Header.Set("Content-Type", ct)
	if c.auth != "" {
		r.Header.Set("Authorization", c.auth)
	}
	w := httptest.NewRecorder()
	h(w, r)
	var body map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("body %q: %v", w.Body.String(), err)
		}
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	return w, body
}

// wantEndpointError checks an RFC 6749 §5.2 error response.
func wantEndpointError(t *testing.T, w *httptest.ResponseRecorder, body map[string]any, status int, code string) {
	t.Helper()
	if w.Code != status || body["error"] != code {
		t.Errorf("response %d %v, want %d %s", w.Code, body, status, code)
	}
	if _, ok := body["active"]; ok {
		t.Errorf("error response %v says whether the token is active", body)
	}
	if code == "invalid_client" && w.Header().Get("WWW-Authenticate") == "" {
		t.Error("invalid_client without a WWW-Authenticate challenge")
	}
}

func TestHandleRevoke(t *testing.T) {
	tests := []struct {
		name string
		// call is made with tok, the refresh token user-1's sign-in gave
		// the client web.
		call     func(tok string) endpointCall
		down     string // "store" or "all": what is closed before the call
		wantCode string
		status   int
		revoked  bool // the grant of tok is revoked
	}{
		{name: "RFC 7009 §2.1 client_secret_basic", status: 200, revoked: true, call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "web-secret"), form: url.Values{"token": {tok}}}
		}},
		{name: "client must use its registered authentication method", status: 401, wantCode: "invalid_client", call: func(tok string) endpointCall {
			return endpointCall{form: url.Values{"token": {tok}, "client_id": {"web"}, "client_secret": {"web-secret"}}}
		}},
		{name: "RFC 7009 §2.1 token_type_hint is only a hint", status: 200, revoked: true, call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "web-secret"), form: url.Values{"token": {tok}, "token_type_hint": {"access_token"}}}
		}},
		{name: "RFC 7009 §2.2 another client's token: 200, nothing revoked", status: 200, call: func(tok string) endpointCall {
			return endpointCall{auth: basic("other", "other-secret"), form: url.Values{"token": {tok}}}
		}},
		{name: "RFC 7009 §2.2 unknown token: 200", status: 200, call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "web-secret"), form: url.Values{"token": {"bm90LWEtdG9rZW4"}}}
		}},
		{name: "public client revoking another client's token", status: 200, call: func(tok string) endpointCall {
			return endpointCall{form: url.Values{"token": {tok}, "client_id": {"spa"}}}
		}},
		{name: "RFC 7009 §2.1 client authentication required", status: 401, wantCode: "invalid_client", call: func(tok string) endpointCall {
			return endpointCall{form: url.Values{"token": {tok}}}
		}},
		{name: "wrong client secret", status: 401, wantCode: "invalid_client", call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "wrong"), form: url.Values{"token": {tok}}}
		}},
		{name: "confidential client without its secret", status: 401, wantCode: "invalid_client", call: func(tok string) endpointCall {
			return endpointCall{form: url.Values{"token": {tok}, "client_id": {"web"}}}
		}},
		{name: "token missing", status: 400, wantCode: "invalid_request", call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "web-secret"), form: url.Values{"token_type_hint": {"refresh_token"}}}
		}},
		{name: "token repeated", status: 400, wantCode: "invalid_request", call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "web-secret"), form: url.Values{"token": {tok, tok}}}
		}},
		{name: "GET", status: 400, wantCode: "invalid_request", call: func(tok string) endpointCall {
			return endpointCall{method: http.MethodGet, auth: basic("web", "web-secret"), form: url.Values{"token": {tok}}}
		}},
		{name: "JSON body", status: 400, wantCode: "invalid_request", call: func(tok string) endpointCall {
			return endpointCall{contentType: "application/json", auth: basic("web", "web-secret"), form: url.Values{"token": {tok}}}
		}},
		{name: "database down: 503, never 200", down: "store", status: 503, wantCode: "temporarily_unavailable", call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "web-secret"), form: url.Values{"token": {tok}}}
		}},
		{name: "database and client lookup down", down: "all", status: 503, wantCode: "temporarily_unavailable", call: func(tok string) endpointCall {
			return endpointCall{auth: basic("web", "web-secret"), form: url.Values{"token": {tok}}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newLifeFixture(t)
			s := f.server(t, Config{})
			in := f.login(t, s, "web")
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

			w, body := tt.call(in.RefreshToken).do(t, s.HandleRevoke, "/revoke")

			if tt.wantCode != "" {
				wantEndpointError(t, w, body, tt.status, tt.wantCode)
			} else if w.Code != tt.status || w.Body.Len() != 0 {
				t.Errorf("response %d %q, want %d and no body", w.Code, w.Body.String(), tt.status)
			}
			if tt.revoked {
				f.wantChanged(t, before, grantKey(in.grantID))
			} else {
				f.wantChanged(t, before)
			}
		})
	}
}
