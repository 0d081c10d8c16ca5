package oauth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// codeStore is an in-memory storage.Store with just what the token
// endpoint uses. err, when set for a method name, is returned by it.
type codeStore struct {
	nopStore
	mu       sync.Mutex
	clients  map[string]storage.Client
	users    map[string]storage.User
	codes    map[string]storage.AuthCode // by string(hash)
	redeemed []storage.Grant
	revoked  []string
	err      map[string]error
}

func (s *codeStore) fail(method string) error {
	return s.err[method]
}

func (s *codeStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return fakeClients{clients: s.clients, err: s.fail("GetClient")}.GetClient(ctx, id)
}

func (s *codeStore) GetUser(_ context.Context, id string) (storage.User, error) {
	if err := s.fail("GetUser"); err != nil {
		return storage.User{}, err
	}
	u, ok := s.users[id]
	if !ok {
		return storage.User{}, storage.ErrNotFound
	}
	return u, nil
}

func (s *codeStore) GetAuthCode(_ context.Context, hash []byte) (storage.AuthCode, error) {
	if err := s.fail("GetAuthCode"); err != nil {
		return storage.AuthCode{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[string(hash)]
	if !ok {
		return storage.AuthCode{}, storage.ErrNotFound
	}
	return c, nil
}

func (s *codeStore) RedeemAuthCode(_ context.Context, hash []byte, now time.Time, g storage.Grant) (storage.AuthCode, error) {
	if err := s.fail("RedeemAuthCode"); err != nil {
		return storage.AuthCode{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[string(hash)]
	if !ok {
		return storage.AuthCode{}, storage.ErrNotFound
	}
	if c.UsedAt != nil {
		return storage.AuthCode{}, storage.ErrConflict
	}
	c.UsedAt = &now
	s.codes[string(hash)] = c
	s.redeemed = append(s.redeemed, g)
	return c, nil
}

func (s *codeStore) RevokeGrant(_ context.Context, id string, _ time.Time) error {
	if err := s.fail("RevokeGrant"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = append(s.revoked, id)
	return nil
}

func newCodeStore() *codeStore {
	used := testNow.Add(-10 * time.Second)
	code := func(id string, mod func(*storage.AuthCode)) (string, storage.AuthCode) {
		c := storage.AuthCode{
			CodeHash: secrets.Hash(id), ClientID: "web", UserID: "user-1", SessionID: "sess-1", GrantID: "grant-" + id,
			RedirectURI: webRedirect, Scopes: []string{"openid", "profile"}, Nonce: "n",
			CodeChallenge: rfc7636Challenge, CodeChallengeMethod: PKCES256,
			AuthTime: testNow.Add(-time.Minute), AMR: []string{"pwd"},
			CreatedAt: testNow.Add(-30 * time.Second), ExpiresAt: testNow.Add(30 * time.Second),
		}
		if mod != nil {
			mod(&c)
		}
		return string(c.CodeHash), c
	}
	s := &codeStore{
		clients: map[string]storage.Client{
			"web":     confidentialClient(),
			"app":     publicClient(),
			"machine": noCodeClient(),
		},
		users: map[string]storage.User{
			"user-1":   {ID: "user-1"},
			"disabled": {ID: "disabled", Disabled: true},
		},
		codes: map[string]storage.AuthCode{},
	}
	for id, mod := range map[string]func(*storage.AuthCode){
		"good":          nil,
		"no-openid":     func(c *storage.AuthCode) { c.Scopes = []string{"profile"} },
		"no-pkce":       func(c *storage.AuthCode) { c.CodeChallenge, c.CodeChallengeMethod = "", "" },
		"for-app":       func(c *storage.AuthCode) { c.ClientID, c.RedirectURI = "app", "http://127.0.0.1:5000/cb" },
		"expired":       func(c *storage.AuthCode) { c.ExpiresAt = testNow },
		"used":          func(c *storage.AuthCode) { c.UsedAt = &used },
		"disabled-user": func(c *storage.AuthCode) { c.UserID = "disabled" },
		"deleted-user":  func(c *storage.AuthCode) { c.UserID = "gone" },
	} {
		h, c := code(id, mod)
		s.codes[h] = c
	}
	return s
}

func TestToken(t *testing.T) {
	webCreds := ClientCredentials{ID: "web", Secret: "web-secret", Method: AuthSecretBasic}
	req := func(code string, mod func(*TokenRequest)) TokenRequest {
		r := TokenRequest{Credentials: webCreds, GrantType: GrantAuthorizationCode, Code: code, RedirectURI: webRedirect, CodeVerifier: rfc7636Verifier}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	tests := []struct {
		name        string
		req         TokenRequest
		storeErr    map[string]error
		idTokenErr  bool
		wantCode    string
		wantStatus  int
		wantRevoked []string
		wantIDToken bool
		wantScope   string
	}{
		{name: "RFC 6749 §4.1.3 code with PKCE and openid", req: req("good", nil), wantIDToken: true, wantScope: "openid profile"},
		{name: "OIDC Core §3.1.3.3 no ID token without openid", req: req("no-openid", nil), wantScope: "profile"},
		{name: "confidential client without PKCE", req: req("no-pkce", func(r *TokenRequest) { r.CodeVerifier = "" }), wantIDToken: true, wantScope: "openid profile"},
		{name: "RFC 8252 §8.4 public client", req: req("for-app", func(r *TokenRequest) {
			r.Credentials = ClientCredentials{ID: "app", Method: AuthNone}
			r.RedirectURI = "http://127.0.0.1:5000/cb"
		}), wantIDToken: true, wantScope: "openid profile"},

		{name: "RFC 6749 §5.2 wrong client secret", req: req("good", func(r *TokenRequest) { r.Credentials.Secret = "x" }), wantCode: "invalid_client", wantStatus: 401},
		{name: "RFC 6749 §5.2 grant_type missing", req: req("good", func(r *TokenRequest) { r.GrantType = "" }), wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §5.2 grant_type password", req: req("good", func(r *TokenRequest) { r.GrantType = "password" }), wantCode: "unsupported_grant_type", wantStatus: 400},
		{name: "RFC 6749 §5.2 client not registered for the grant", req: req("good", func(r *TokenRequest) {
			r.Credentials = ClientCredentials{ID: "machine", Secret: "web-secret", Method: AuthSecretBasic}
		}), wantCode: "unauthorized_client", wantStatus: 400},
		{name: "RFC 6749 §4.1.3 code missing", req: req("", nil), wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §5.2 unknown code", req: req("nope", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 6749 §4.1.3 code of another client", req: req("for-app", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 6749 §4.1.3 redirect_uri differs", req: req("good", func(r *TokenRequest) { r.RedirectURI = webRedirect + "/" }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 6749 §4.1.3 redirect_uri missing", req: req("good", func(r *TokenRequest) { r.RedirectURI = "" }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 8252 §7.3 token redirect_uri needs the same port", req: req("for-app", func(r *TokenRequest) {
			r.Credentials = ClientCredentials{ID: "app", Method: AuthNone}
			r.RedirectURI = "http://127.0.0.1:5001/cb"
		}), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 7636 §4.6 wrong verifier", req: req("good", func(r *TokenRequest) { r.CodeVerifier = strings.Repeat("a", 43) }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 7636 §4.5 verifier missing", req: req("good", func(r *TokenRequest) { r.CodeVerifier = "" }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 9700 §4.8.2 PKCE downgrade", req: req("no-pkce", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 6749 §4.1.2 expired code", req: req("expired", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "RFC 6749 §4.1.2 replay revokes the grant", req: req("used", nil), wantCode: "invalid_grant", wantStatus: 400, wantRevoked: []string{"grant-used"}},
		{name: "replay without the verifier revokes nothing", req: req("used", func(r *TokenRequest) { r.CodeVerifier = strings.Repeat("a", 43) }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "replay with the wrong redirect_uri revokes nothing", req: req("used", func(r *TokenRequest) { r.RedirectURI = "https://evil.example/" }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "disabled user", req: req("disabled-user", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "deleted user", req: req("deleted-user", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "store down", req: req("good", nil), storeErr: map[string]error{"GetAuthCode": errors.New("conn reset")}, wantCode: "temporarily_unavailable", wantStatus: 503},
		{name: "lost redemption race counts as replay", req: req("good", nil), storeErr: map[string]error{"RedeemAuthCode": fmt.Errorf("redeem: %w", storage.ErrConflict)}, wantCode: "invalid_grant", wantStatus: 400, wantRevoked: []string{"grant-good"}},
		{name: "replay whose revocation fails is not reported as done", req: req("used", nil), storeErr: map[string]error{"RevokeGrant": errors.New("conn reset")}, wantCode: "temporarily_unavailable", wantStatus: 503},
		{name: "ID token failure is server_error", req: req("good", nil), idTokenErr: true, wantCode: "server_error", wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newCodeStore()
			st.err = tt.storeErr
			var idt IDTokenMinter = fakeIDTokens{}
			if tt.idTokenErr {
				idt = failingIDTokens{}
			}
			signer := &fakeSigner{}
			s := newTestServer(t, Config{}, Deps{Store: st, Signer: signer, IDTokens: idt})
			resp, e := s.Token(t.Context(), tt.req)
			if fmt.Sprint(st.revoked) != fmt.Sprint(tt.wantRevoked) {
				t.Errorf("revoked grants = %v, want %v", st.revoked, tt.wantRevoked)
			}
			if tt.wantCode != "" {
				wantError(t, e, tt.wantCode, tt.wantStatus)
				if resp != nil {
					t.Errorf("response %+v with an error", resp)
				}
				if len(st.redeemed) != 0 && tt.storeErr["RedeemAuthCode"] == nil && !tt.idTokenErr {
					t.Errorf("code redeemed although the request failed: %+v", st.redeemed)
				}
				return
			}
			if e != nil {
				t.Fatalf("error = %v", e)
			}
			if resp.AccessToken == "" || resp.TokenType != "Bearer" || resp.ExpiresIn != 600 || resp.Scope != tt.wantScope {
				t.Errorf("response = %+v", resp)
			}
			if (resp.IDToken != "") != tt.wantIDToken {
				t.Errorf("id_token = %q, want present %v", resp.IDToken, tt.wantIDToken)
			}
			if len(st.redeemed) != 1 {
				t.Fatalf("redeemed %d times, want 1", len(st.redeemed))
			}
			var c AccessTokenClaims
			if err := json.Unmarshal(signer.claims, &c); err != nil {
				t.Fatal(err)
			}
			if g := st.redeemed[0]; c.GrantID() != g.ID || g.UserID != c.Subject || g.ClientID != tt.req.Credentials.ID {
				t.Errorf("grant %+v does not match access token claims %+v", g, c)
			}
			// RFC 6749 §4.1.2: single use.
			if _, e := s.Token(t.Context(), tt.req); e == nil || e.Code != "invalid_grant" {
				t.Errorf("second redemption: %v, want invalid_grant", e)
			}
			if len(st.revoked) != 1 || st.revoked[0] != st.redeemed[0].ID {
				t.Errorf("second redemption revoked %v, want [%s]", st.revoked, st.redeemed[0].ID)
			}
		})
	}
}

type failingIDTokens struct{}

func (failingIDTokens) MintIDToken(context.Context, IDTokenRequest) (string, error) {
	return "", errors.New("no signing key for RS256")
}

func TestHandleToken(t *testing.T) {
	tests := []struct {
		name       string
		auth       string
		body       string
		wantStatus int
		wantError  string
	}{
		{"RFC 6749 §5.1 success", basic("web", "web-secret"),
			"grant_type=authorization_code&code=good&redirect_uri=" + url.QueryEscape(webRedirect) + "&code_verifier=" + rfc7636Verifier, 200, ""},
		{"RFC 6749 §5.2 invalid_client", basic("web", "wrong"),
			"grant_type=authorization_code&code=good&redirect_uri=" + url.QueryEscape(webRedirect) + "&code_verifier=" + rfc7636Verifier, 401, "invalid_client"},
		{"RFC 6749 §5.2 parse error", "", "grant_type=authorization_code&code=a&code=b&client_id=app", 400, "invalid_request"},
		{"RFC 6749 §5.2 invalid_grant", basic("web", "web-secret"), "grant_type=authorization_code&code=nope", 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Config{}, Deps{Store: newCodeStore()})
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/token", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			s.HandleToken(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if tt.wantError == "" {
				if body["access_token"] == nil || body["token_type"] != "Bearer" || body["error"] != nil {
					t.Errorf("body = %v", body)
				}
				return
			}
			if body["error"] != tt.wantError || body["access_token"] != nil {
				t.Errorf("body = %v, want error %s", body, tt.wantError)
			}
		})
	}
}

func (s *codeStore) CreateAuthCode(_ context.Context, c storage.AuthCode) error {
	if err := s.fail("CreateAuthCode"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[string(c.CodeHash)] = c
	return nil
}

func TestIssueCode(t *testing.T) {
	st := newCodeStore()
	s := newTestServer(t, Config{CodeTTL: 45 * time.Second}, Deps{Store: st})
	areq := &AuthorizeRequest{
		ClientID: "web", RedirectURI: webRedirect, Scopes: []string{"openid"}, Nonce: "n-1",
		CodeChallenge: rfc7636Challenge, CodeChallengeMethod: PKCES256,
	}
	sub := Subject{UserID: "user-1", SessionID: "sess-1", AuthTime: testNow.Add(-time.Minute), AMR: []string{"pwd"}}
	code, err := s.IssueCode(t.Context(), areq, sub)
	if err != nil {
		t.Fatal(err)
	}
	stored, ok := st.codes[string(secrets.Hash(code))]
	if !ok {
		t.Fatal("code not stored under its hash")
	}
	t.Run("only the hash is stored", func(t *testing.T) {
		for k, c := range st.codes {
			if strings.Contains(k, code) || strings.Contains(fmt.Sprintf("%+v", c), code) {
				t.Errorf("plain code stored: %+v", c)
			}
		}
	})
	t.Run("RFC 6749 §4.1.2 bound to the request", func(t *testing.T) {
		if stored.ClientID != "web" || stored.RedirectURI != webRedirect || stored.CodeChallenge != rfc7636Challenge ||
			stored.CodeChallengeMethod != PKCES256 || stored.Nonce != "n-1" || stored.UserID != "user-1" ||
			stored.SessionID != "sess-1" || stored.GrantID == "" || stored.UsedAt != nil {
			t.Errorf("stored code = %+v", stored)
		}
	})
	t.Run("RFC 6749 §4.1.2 short lifetime", func(t *testing.T) {
		if !stored.CreatedAt.Equal(testNow) || !stored.ExpiresAt.Equal(testNow.Add(45*time.Second)) {
			t.Errorf("created %v expires %v", stored.CreatedAt, stored.ExpiresAt)
		}
	})
	t.Run("redeemable once", func(t *testing.T) {
		req := TokenRequest{Credentials: ClientCredentials{ID: "web", Secret: "web-secret", Method: AuthSecretBasic},
			GrantType: GrantAuthorizationCode, Code: code, RedirectURI: webRedirect, CodeVerifier: rfc7636Verifier}
		if _, e := s.Token(t.Context(), req); e != nil {
			t.Fatalf("first redemption: %v", e)
		}
		if _, e := s.Token(t.Context(), req); e == nil || e.Code != "invalid_grant" {
			t.Fatalf("second redemption: %v", e)
		}
	})
	t.Run("two codes differ", func(t *testing.T) {
		s := newTestServer(t, Config{}, Deps{Store: newCodeStore(), Rand: rand.Reader})
		a, err1 := s.IssueCode(t.Context(), areq, sub)
		b, err2 := s.IssueCode(t.Context(), areq, sub)
		if err1 != nil || err2 != nil || a == b {
			t.Errorf("codes %q %q (%v, %v)", a, b, err1, err2)
		}
	})
	t.Run("store failure", func(t *testing.T) {
		st := newCodeStore()
		st.err = map[string]error{"CreateAuthCode": errors.New("disk full")}
		s := newTestServer(t, Config{}, Deps{Store: st})
		if code, err := s.IssueCode(t.Context(), areq, sub); err == nil || code != "" {
			t.Errorf("IssueCode = %q, %v; want an error", code, err)
		}
	})
}
