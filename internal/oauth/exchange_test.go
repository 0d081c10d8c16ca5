package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// usedAt is when the fixture code "used" was redeemed.
var usedAt = testNow.Add(-10 * time.Second)

// fixtureCodes are the authorization codes token tests redeem, by their
// plain value. A code's grant is "grant-" + its value.
func fixtureCodes() map[string]storage.AuthCode {
	code := func(id string, mod func(*storage.AuthCode)) storage.AuthCode {
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
		return c
	}
	return map[string]storage.AuthCode{
		"good":          code("good", nil),
		"no-openid":     code("no-openid", func(c *storage.AuthCode) { c.Scopes = []string{"profile"} }),
		"no-pkce":       code("no-pkce", func(c *storage.AuthCode) { c.CodeChallenge, c.CodeChallengeMethod = "", "" }),
		"for-app":       code("for-app", func(c *storage.AuthCode) { c.ClientID, c.RedirectURI = "app", "http://127.0.0.1:5000/cb" }),
		"expired":       code("expired", func(c *storage.AuthCode) { c.ExpiresAt = testNow }),
		"used":          code("used", nil), // redeemed at usedAt by seedTokenData
		"disabled-user": code("disabled-user", func(c *storage.AuthCode) { c.UserID = "disabled" }),
		"deleted-user":  code("deleted-user", func(c *storage.AuthCode) { c.UserID = "gone" }),
		"ended-session": code("ended-session", func(c *storage.AuthCode) { c.SessionID = "sess-ended" }),
	}
}

// seedTokenData stores, through the storage interface, the clients, users
// and codes the token tests use, and user-1's live login session sess-1,
// which the codes' grants are bound to. The code "used" is redeemed the
// way the token endpoint does it, so its grant exists. The user "gone" is
// deleted after its code was issued; the schema deletes the code with it.
func seedTokenData(t *testing.T, st storage.Store) {
	t.Helper()
	createClients(t, st, confidentialClient(), publicClient(), noCodeClient())
	createUsers(t, st,
		storage.User{ID: "user-1"},
		storage.User{ID: "disabled", Disabled: true},
		storage.User{ID: "gone"})
	createSession(t, st, "sess-1", "user-1", testNow.Add(-time.Minute))
	// sess-ended ended (a password change, a forced logout) after its
	// code was issued.
	createSession(t, st, "sess-ended", "user-1", testNow.Add(-time.Minute))
	if err := st.EndSession(t.Context(), "sess-ended", testNow.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	for id, c := range fixtureCodes() {
		if err := st.CreateAuthCode(t.Context(), c); err != nil {
			t.Fatalf("create code %s: %v", id, err)
		}
	}
	used := fixtureCodes()["used"]
	if _, err := st.RedeemAuthCode(t.Context(), used.CodeHash, usedAt, storage.Grant{
		ID: used.GrantID, UserID: used.UserID, ClientID: used.ClientID, SessionID: used.SessionID,
		Scopes: used.Scopes, CreatedAt: usedAt,
	}, storage.IssuedTokens{}); err != nil {
		t.Fatalf("redeem code used: %v", err)
	}
	// Users are never deleted through storage.Store; an operator with SQL
	// can still do it.
	execSQL(t, st, `DELETE FROM users WHERE id = 'gone'`)
}

// codeState is what a token request can change about a fixture code: the
// code row (gone, used or not) and its grant row.
func codeState(t *testing.T, st storage.Store, id string) string {
	t.Helper()
	ctx := t.Context()
	var b strings.Builder
	c, err := st.GetAuthCode(ctx, secrets.Hash(id))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		b.WriteString("code absent")
	case err != nil:
		t.Fatalf("read back code %s: %v", id, err)
	default:
		fmt.Fprintf(&b, "code used_at=%s", fmtTime(c.UsedAt))
	}
	g, err := st.GetGrant(ctx, "grant-"+id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		b.WriteString("; grant absent")
	case err != nil:
		t.Fatalf("read back grant of %s: %v", id, err)
	default:
		fmt.Fprintf(&b, "; grant user=%s client=%s session=%s scopes=%q created_at=%s revoked_at=%s",
			g.UserID, g.ClientID, g.SessionID, g.Scopes, g.CreatedAt.UTC().Format(time.RFC3339Nano), fmtTime(g.RevokedAt))
	}
	return b.String()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "nil"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// allCodeStates reads codeState for every fixture code.
func allCodeStates(t *testing.T, st storage.Store) map[string]string {
	t.Helper()
	m := map[string]string{}
	for id := range fixtureCodes() {
		m[id] = codeState(t, st, id)
	}
	return m
}

// redeemedState is codeState after code id was redeemed at testNow.
func redeemedState(id string, revoked bool) string {
	c := fixtureCodes()[id]
	r := "nil"
	if revoked {
		r = testNow.Format(time.RFC3339Nano)
	}
	now := testNow.Format(time.RFC3339Nano)
	return fmt.Sprintf("code used_at=%s; grant user=%s client=%s session=%s scopes=%q created_at=%s revoked_at=%s",
		now, c.UserID, c.ClientID, c.SessionID, c.Scopes, now, r)
}

// revokedNow is a codeState whose grant was revoked at testNow.
func revokedNow(state string) string {
	return strings.Replace(state, "revoked_at=nil", "revoked_at="+testNow.Format(time.RFC3339Nano), 1)
}

// checkCodeStates compares every fixture code's state with want and
// reports each difference.
func checkCodeStates(t *testing.T, st storage.Store, want map[string]string) {
	t.Helper()
	got := allCodeStates(t, st)
	for _, id := range slices.Sorted(maps.Keys(want)) {
		if got[id] != want[id] {
			t.Errorf("code %s:\n got %s\nwant %s", id, got[id], want[id])
		}
	}
}

// tokenFixture is one database seeded by seedTokenData and the handles a
// token test needs on it.
type tokenFixture struct {
	// store is the server's handle. Tests may close it (the database is
	// down) or make it read-only.
	store storage.Store
	// db is another handle on the same database, always open and
	// writable: the test reads back through it.
	db       storage.Store
	keys     *keys.Manager
	idTokens *keyIDTokens
	logs     *syncBuffer
}

// newTokenFixture seeds a fresh SQLite database. With readOnly it is a
// Postgres database instead, and the server's connection refuses writes.
func newTokenFixture(t *testing.T, readOnly bool) *tokenFixture {
	t.Helper()
	f := &tokenFixture{logs: &syncBuffer{}}
	if readOnly {
		dbURL := pgtest.NewDatabaseURL(t)
		f.db = openPostgres(t, dbURL)
		f.store = openPostgres(t, readOnlyURL(t, dbURL))
	} else {
		st := newStore(t)
		f.store, f.db = st, reopen(t, st)
	}
	seedTokenData(t, f.db)
	f.keys = newKeys(t, f.db)
	f.idTokens = &keyIDTokens{keys: f.keys}
	return f
}

// server returns a server over the fixture's store; idTokens nil means
// the fixture's real-key ID tokens.
func (f *tokenFixture) server(t *testing.T, idTokens IDTokenMinter) *Server {
	t.Helper()
	if idTokens == nil {
		idTokens = f.idTokens
	}
	return newTestServer(t, Config{}, Deps{
		Store: f.store, Signer: f.keys, Verifier: f.keys, IDTokens: idTokens,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var webCreds = ClientCredentials{ID: "web", Secret: "web-secret", Method: AuthSecretBasic}

// tokenReq is a request that redeems code as the web client would.
func tokenReq(code string, mod func(*TokenRequest)) TokenRequest {
	r := TokenRequest{Credentials: webCreds, GrantType: GrantAuthorizationCode, Code: code, RedirectURI: webRedirect, CodeVerifier: rfc7636Verifier}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestToken(t *testing.T) {
	req := tokenReq
	tests := []struct {
		name        string
		req         TokenRequest
		down        bool // the server's store is closed before the request
		readOnly    bool // the server's connection (to Postgres) refuses writes
		idTokenErr  bool
		wantCode    string
		wantStatus  int
		wantRevoked []string // codes whose grant the request revokes
		wantLog     string
		wantIDToken bool
		wantRefresh bool // only clients registered for refresh_token get one
		wantScope   string
	}{
		{name: "RFC 6749 §4.1.3 code with PKCE and openid", req: req("good", nil), wantIDToken: true, wantRefresh: true, wantScope: "openid profile"},
		{name: "OIDC Core §3.1.3.3 no ID token without openid", req: req("no-openid", nil), wantRefresh: true, wantScope: "profile"},
		{name: "confidential client without PKCE", req: req("no-pkce", func(r *TokenRequest) { r.CodeVerifier = "" }), wantIDToken: true, wantRefresh: true, wantScope: "openid profile"},
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
		{name: "RFC 6749 §4.1.2 replay revokes the grant", req: req("used", nil), wantCode: "invalid_grant", wantStatus: 400,
			wantRevoked: []string{"used"}, wantLog: "authorization code replayed; grant revoked"},
		{name: "replay without the verifier revokes nothing", req: req("used", func(r *TokenRequest) { r.CodeVerifier = strings.Repeat("a", 43) }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "replay with the wrong redirect_uri revokes nothing", req: req("used", func(r *TokenRequest) { r.RedirectURI = "https://evil.example/" }), wantCode: "invalid_grant", wantStatus: 400},
		{name: "disabled user", req: req("disabled-user", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "the code's login session has ended since", req: req("ended-session", nil), wantCode: "invalid_grant", wantStatus: 400},
		// Deleting a user deletes its codes (ON DELETE CASCADE), so the
		// code is unknown by the time it is redeemed.
		{name: "deleted user", req: req("deleted-user", nil), wantCode: "invalid_grant", wantStatus: 400},
		{name: "store down", req: req("good", nil), down: true, wantCode: "temporarily_unavailable", wantStatus: 503},
		{name: "replay whose revocation fails is not reported as done", req: req("used", nil), readOnly: true,
			wantCode: "temporarily_unavailable", wantStatus: 503, wantLog: "revoke grant after code replay"},
		// Tokens are signed before the code is redeemed: a failure leaves
		// the code unused, and the client's retry is not a replay.
		{name: "ID token failure is server_error and leaves the code unused", req: req("good", nil), idTokenErr: true, wantCode: "server_error", wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTokenFixture(t, tt.readOnly)
			var idt IDTokenMinter
			if tt.idTokenErr {
				idt = failingIDTokens{}
			}
			s := f.server(t, idt)
			want := allCodeStates(t, f.db)
			if tt.down {
				if err := f.store.Close(); err != nil {
					t.Fatal(err)
				}
			}

			resp, e := s.Token(t.Context(), tt.req)

			if tt.wantLog != "" && !strings.Contains(f.logs.String(), tt.wantLog) {
				t.Errorf("log %q does not say %q", f.logs.String(), tt.wantLog)
			}
			if tt.wantCode != "" {
				wantError(t, e, tt.wantCode, tt.wantStatus)
				if resp != nil {
					t.Errorf("response %+v with an error", resp)
				}
				if tt.wantCode == "temporarily_unavailable" {
					wantUnavailable(t, e)
				}
				// Nothing is written by a failed request but the
				// revocation a replay calls for.
				for _, id := range tt.wantRevoked {
					want[id] = revokedNow(want[id])
				}
				checkCodeStates(t, f.db, want)
				if tt.idTokenErr {
					// The client retries once signing works again.
					if _, e := f.server(t, nil).Token(t.Context(), tt.req); e != nil {
						t.Fatalf("retry after the ID token failure: %v", e)
					}
					want[tt.req.Code] = redeemedState(tt.req.Code, false)
					checkCodeStates(t, f.db, want)
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
			// RFC 6749 §4.1.2: the code is now used, and the grant its
			// tokens descend from exists; nothing else changed.
			want[tt.req.Code] = redeemedState(tt.req.Code, false)
			checkCodeStates(t, f.db, want)

			c, ok := s.verifyAccessJWT(resp.AccessToken, testNow)
			if !ok {
				t.Fatal("the access token does not verify")
			}
			code := fixtureCodes()[tt.req.Code]
			if c.GrantID() != code.GrantID || c.Subject != code.UserID || c.ClientID != tt.req.Credentials.ID || c.Scope != tt.wantScope {
				t.Errorf("access token claims %+v do not match the grant of code %+v", c, code)
			}
			if info, e := bearer(t, s, resp.AccessToken); e != nil || info.GrantID != code.GrantID {
				t.Errorf("the access token is not accepted by this server: %+v, %v", info, e)
			}
			if (resp.RefreshToken != "") != tt.wantRefresh {
				t.Errorf("refresh_token = %q, want present %v", resp.RefreshToken, tt.wantRefresh)
			}
			if tt.wantRefresh {
				rt, err := f.db.GetRefreshToken(t.Context(), secrets.Hash(resp.RefreshToken))
				if err != nil || rt.GrantID != code.GrantID || rt.ClientID != code.ClientID || rt.UserID != code.UserID ||
					!slices.Equal(rt.Scopes, code.Scopes) || rt.UsedAt != nil {
					t.Errorf("stored refresh token %+v, %v; want an unspent token of grant %s", rt, err, code.GrantID)
				}
			}
			if tt.wantIDToken {
				r, n := f.idTokens.last()
				if n != 1 || r.User.ID != code.UserID || r.Client.ID != code.ClientID || r.Nonce != code.Nonce ||
					r.SessionID != code.SessionID || !r.AuthTime.Equal(code.AuthTime) || r.AccessToken != resp.AccessToken {
					t.Errorf("ID token minted %d times, last from %+v", n, r)
				}
				// RFC 9068 §4: the ID token is no access token.
				if _, ok := s.verifyAccessJWT(resp.IDToken, testNow); ok {
					t.Error("the ID token verifies as an access token")
				}
				if _, e := bearer(t, s, resp.IDToken); e == nil {
					t.Error("the ID token is accepted as a bearer token")
				}
			}

			// RFC 6749 §4.1.2: single use; a second use revokes the grant.
			if _, e := s.Token(t.Context(), tt.req); e == nil || e.Code != "invalid_grant" {
				t.Errorf("second redemption: %v, want invalid_grant", e)
			}
			want[tt.req.Code] = redeemedState(tt.req.Code, true)
			checkCodeStates(t, f.db, want)
			// RFC 6749 §4.1.2: and so the tokens issued from it end.
			if _, e := bearer(t, s, resp.AccessToken); e == nil {
				t.Error("the access token is still accepted after the replay")
			}
			if resp.RefreshToken != "" {
				if info, err := s.Inspect(t.Context(), resp.RefreshToken); err != nil || info.Active {
					t.Errorf("the refresh token after the replay: %+v, %v; want inactive", info, err)
				}
			}
		})
	}
}

type failingIDTokens struct{}

func (failingIDTokens) MintIDToken(context.Context, IDTokenRequest) (string, error) {
	return "", errors.New("no signing key for RS256")
}

// TestTokenInterleaved runs something else in the window between reading
// the code and redeeming it (while the tokens are signed).
func TestTokenInterleaved(t *testing.T) {
	t.Run("lost redemption race counts as replay", func(t *testing.T) {
		f := newTokenFixture(t, false)
		var s *Server
		var winner *TokenResponse
		var winnerErr *Error
		s = f.server(t, &hookIDTokens{IDTokenMinter: f.idTokens, during: func(ctx context.Context) {
			winner, winnerErr = s.Token(ctx, tokenReq("good", nil))
		}})
		want := allCodeStates(t, f.db)

		resp, e := s.Token(t.Context(), tokenReq("good", nil))

		if winnerErr != nil || winner == nil {
			t.Fatalf("the request that got in first: %v", winnerErr)
		}
		wantError(t, e, "invalid_grant", 400)
		if resp != nil {
			t.Errorf("the request that lost got tokens: %+v", resp)
		}
		// RFC 6749 §4.1.2: the grant the winner's tokens carry is revoked.
		want["good"] = redeemedState("good", true)
		checkCodeStates(t, f.db, want)
		if c, ok := s.verifyAccessJWT(winner.AccessToken, testNow); !ok || c.GrantID() != "grant-good" {
			t.Errorf("winner's access token: claims %+v, verified %v", c, ok)
		}
		if _, e := bearer(t, s, winner.AccessToken); e == nil {
			t.Error("the winner's access token is still accepted though its grant is revoked")
		}
	})
	t.Run("database down before the code is redeemed", func(t *testing.T) {
		f := newTokenFixture(t, false)
		s := f.server(t, &hookIDTokens{IDTokenMinter: f.idTokens, during: func(context.Context) {
			if err := f.store.Close(); err != nil {
				t.Error(err)
			}
		}})
		want := allCodeStates(t, f.db)

		resp, e := s.Token(t.Context(), tokenReq("good", nil))

		wantUnavailable(t, e)
		if resp != nil {
			t.Errorf("response %+v with an error", resp)
		}
		checkCodeStates(t, f.db, want)
	})
	t.Run("database down after the client is authenticated", func(t *testing.T) {
		// exchangeCode's first read, of the code, fails: the client was
		// authenticated while the database still answered.
		f := newTokenFixture(t, false)
		s := f.server(t, nil)
		client, err := f.store.GetClient(t.Context(), "web")
		if err != nil {
			t.Fatal(err)
		}
		want := allCodeStates(t, f.db)
		if err := f.store.Close(); err != nil {
			t.Fatal(err)
		}
		resp, e := s.exchangeCode(t.Context(), client, tokenReq("good", nil))
		wantUnavailable(t, e)
		if resp != nil {
			t.Errorf("response %+v with an error", resp)
		}
		checkCodeStates(t, f.db, want)
	})
}

// TestTokenConcurrentRedemption: RFC 6749 §4.1.2 says a code used more
// than once MUST be denied and the tokens issued from it SHOULD be
// revoked. Concurrent uses are no exception: exactly one request gets
// tokens, and the grant they carry ends up revoked.
func TestTokenConcurrentRedemption(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) storage.Store
	}{
		{"postgres", func(t *testing.T) storage.Store { return pgtest.NewStore(t) }},
		{"sqlite", func(t *testing.T) storage.Store { return newStore(t) }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			createClients(t, st, confidentialClient())
			createUsers(t, st, storage.User{ID: "user-1"})
			createSession(t, st, "sess-1", "user-1", testNow.Add(-time.Minute))
			good := fixtureCodes()["good"]
			if err := st.CreateAuthCode(t.Context(), good); err != nil {
				t.Fatal(err)
			}
			m := newKeys(t, st)
			idt := &keyIDTokens{keys: m}
			s := newTestServer(t, Config{}, Deps{Store: st, Signer: m, Verifier: m, IDTokens: idt, Rand: rand.Reader})

			const n = 20
			resps := make([]*TokenResponse, n)
			errs := make([]*Error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					resps[i], errs[i] = s.Token(t.Context(), tokenReq("good", nil))
				})
			}
			close(start)
			wg.Wait()

			var winners []int
			for i := range n {
				switch {
				case errs[i] == nil && resps[i] != nil:
					winners = append(winners, i)
				case errs[i] != nil && errs[i].Code == "invalid_grant" && errs[i].Status == 400 && resps[i] == nil:
				default:
					t.Errorf("request %d: response %+v, error %v; want tokens or invalid_grant", i, resps[i], errs[i])
				}
			}
			if len(winners) != 1 {
				t.Fatalf("%d requests got tokens, want exactly 1", len(winners))
			}
			if got, want := codeState(t, st, "good"), redeemedState("good", true); got != want {
				t.Errorf("after the race:\n got %s\nwant %s", got, want)
			}
			c, ok := s.verifyAccessJWT(resps[winners[0]].AccessToken, testNow)
			if !ok || c.GrantID() != good.GrantID {
				t.Errorf("winner's access token: claims %+v, verified %v; want grant %s", c, ok, good.GrantID)
			}
		})
	}
}

func TestHandleToken(t *testing.T) {
	good := "grant_type=authorization_code&code=good&redirect_uri=" + url.QueryEscape(webRedirect) + "&code_verifier=" + rfc7636Verifier
	tests := []struct {
		name       string
		target     string // default /token
		auth       string
		body       string
		wantStatus int
		wantError  string
	}{
		{"RFC 6749 §5.1 success", "", basic("web", "web-secret"), good, 200, ""},
		{"malformed query string is ignored", "/token?a=%zz;b", basic("web", "web-secret"), good, 200, ""},
		{"RFC 6749 §5.2 invalid_client", "", basic("web", "wrong"), good, 401, "invalid_client"},
		{"RFC 6749 §5.2 parse error", "", "", "grant_type=authorization_code&code=a&code=b&client_id=app", 400, "invalid_request"},
		{"RFC 6749 §5.2 invalid_grant", "", basic("web", "web-secret"), "grant_type=authorization_code&code=nope", 400, "invalid_grant"},
		{"credentials in the query do not count", "/token?client_secret=web-secret", "",
			"grant_type=authorization_code&code=good&client_id=web", 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTokenFixture(t, false)
			s := f.server(t, nil)
			mux := http.NewServeMux()
			mux.HandleFunc("/token", s.HandleToken)
			srv := httptest.NewUnstartedServer(mux)
			// net/http logs every query with a semicolon.
			srv.Config.ErrorLog = log.New(io.Discard, "", 0)
			srv.Start()
			defer srv.Close()

			target := tt.target
			if target == "" {
				target = "/token"
			}
			r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			res, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			raw, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", res.StatusCode, tt.wantStatus, raw)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %q: %v", raw, err)
			}
			if tt.wantError == "" {
				at, _ := body["access_token"].(string)
				if body["token_type"] != "Bearer" || body["error"] != nil {
					t.Errorf("body = %v", body)
				}
				if _, ok := s.verifyAccessJWT(at, testNow); !ok {
					t.Errorf("access_token %q does not verify", at)
				}
				return
			}
			if body["error"] != tt.wantError || body["access_token"] != nil {
				t.Errorf("body = %v, want error %s", body, tt.wantError)
			}
			if got := codeState(t, f.db, "good"); got != "code used_at=nil; grant absent" {
				t.Errorf("a failed request changed the code: %s", got)
			}
		})
	}
}

func TestIssueCode(t *testing.T) {
	st := newStore(t)
	createClients(t, st, confidentialClient())
	createUsers(t, st, storage.User{ID: "user-1"})
	createSession(t, st, "sess-1", "user-1", testNow.Add(-time.Minute))
	m := newKeys(t, st)
	deps := func(r io.Reader) Deps {
		return Deps{Store: st, Signer: m, Verifier: m, IDTokens: &keyIDTokens{keys: m}, Rand: r}
	}
	s := newTestServer(t, Config{CodeTTL: 45 * time.Second}, deps(nil))
	areq := &AuthorizeRequest{
		ClientID: "web", RedirectURI: webRedirect, Scopes: []string{"openid"}, Nonce: "n-1",
		CodeChallenge: rfc7636Challenge, CodeChallengeMethod: PKCES256,
	}
	sub := Subject{UserID: "user-1", SessionID: "sess-1", AuthTime: testNow.Add(-time.Minute), AMR: []string{"pwd"}}
	code, err := s.IssueCode(t.Context(), areq, sub)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.GetAuthCode(t.Context(), secrets.Hash(code))
	if err != nil {
		t.Fatalf("code not stored under its hash: %v", err)
	}
	t.Run("only the hash is stored", func(t *testing.T) {
		// What a copy of the database files would give away.
		var dump []byte
		files, err := filepath.Glob(st.Path() + "*") // the database, its -wal and -shm
		if err != nil || len(files) == 0 {
			t.Fatalf("database files: %v %v", files, err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			dump = append(dump, b...)
		}
		if !bytes.Contains(dump, secrets.Hash(code)) {
			t.Fatal("the code's hash is not in the database files; the dump is not what was written")
		}
		if bytes.Contains(dump, []byte(code)) {
			t.Error("the plain code is in the database files")
		}
		if strings.Contains(fmt.Sprintf("%+v", stored), code) {
			t.Errorf("plain code stored: %+v", stored)
		}
	})
	t.Run("RFC 6749 §4.1.2 bound to the request", func(t *testing.T) {
		if stored.ClientID != "web" || stored.RedirectURI != webRedirect || stored.CodeChallenge != rfc7636Challenge ||
			stored.CodeChallengeMethod != PKCES256 || stored.Nonce != "n-1" || stored.UserID != "user-1" ||
			stored.SessionID != "sess-1" || stored.GrantID == "" || stored.UsedAt != nil ||
			!slices.Equal(stored.Scopes, []string{"openid"}) || !slices.Equal(stored.AMR, []string{"pwd"}) ||
			!stored.AuthTime.Equal(sub.AuthTime) {
			t.Errorf("stored code = %+v", stored)
		}
	})
	t.Run("RFC 6749 §4.1.2 short lifetime", func(t *testing.T) {
		if !stored.CreatedAt.Equal(testNow) || !stored.ExpiresAt.Equal(testNow.Add(45*time.Second)) {
			t.Errorf("created %v expires %v", stored.CreatedAt, stored.ExpiresAt)
		}
	})
	t.Run("redeemable once", func(t *testing.T) {
		req := TokenRequest{Credentials: webCreds, GrantType: GrantAuthorizationCode, Code: code, RedirectURI: webRedirect, CodeVerifier: rfc7636Verifier}
		if _, e := s.Token(t.Context(), req); e != nil {
			t.Fatalf("first redemption: %v", e)
		}
		if c, err := st.GetAuthCode(t.Context(), secrets.Hash(code)); err != nil || c.UsedAt == nil || !c.UsedAt.Equal(testNow) {
			t.Fatalf("after redemption: code %+v, %v", c, err)
		}
		if _, e := s.Token(t.Context(), req); e == nil || e.Code != "invalid_grant" {
			t.Fatalf("second redemption: %v", e)
		}
		if g, err := st.GetGrant(t.Context(), stored.GrantID); err != nil || g.RevokedAt == nil {
			t.Errorf("after the second redemption: grant %+v, %v; want it revoked", g, err)
		}
	})
	t.Run("two codes differ", func(t *testing.T) {
		s := newTestServer(t, Config{}, deps(rand.Reader))
		a, err1 := s.IssueCode(t.Context(), areq, sub)
		b, err2 := s.IssueCode(t.Context(), areq, sub)
		if err1 != nil || err2 != nil || a == b {
			t.Fatalf("codes %q %q (%v, %v)", a, b, err1, err2)
		}
		ca, err1 := st.GetAuthCode(t.Context(), secrets.Hash(a))
		cb, err2 := st.GetAuthCode(t.Context(), secrets.Hash(b))
		if err1 != nil || err2 != nil || ca.GrantID == cb.GrantID {
			t.Errorf("stored %+v / %+v (%v, %v): want two codes with their own grant ids", ca, cb, err1, err2)
		}
	})
	t.Run("store down", func(t *testing.T) {
		st := newStore(t)
		createClients(t, st, confidentialClient())
		createUsers(t, st, storage.User{ID: "user-1"})
		s := newTestServer(t, Config{}, Deps{Store: st})
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		if code, err := s.IssueCode(t.Context(), areq, sub); err == nil || code != "" {
			t.Errorf("IssueCode = %q, %v; want an error", code, err)
		}
		if n := countRows(t, st, "auth_codes"); n != 0 {
			t.Errorf("%d codes stored by a failed IssueCode", n)
		}
	})
}
