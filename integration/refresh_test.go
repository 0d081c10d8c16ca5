package integration

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

const refreshGrants = `"grant_types":["authorization_code","refresh_token"],"skip_consent":true`

// refreshVia asks x/oauth2 to refresh: a token whose access token has
// expired makes its TokenSource use the refresh token.
func refreshVia(a app, refreshToken string) (*oauth2.Token, error) {
	return a.RP.config.TokenSource(a.RP.ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
}

func refreshForm(rt, scope string) url.Values {
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if scope != "" {
		v.Set("scope", scope)
	}
	return v
}

// introspect asks the server about token as a resource server would.
func (s *testServer) introspect(t testing.TB, rs app, token string) map[string]any {
	t.Helper()
	r := postForm(t, s.URL+"/introspect", url.Values{"token": {token}}, rs.ID, rs.Secret)
	if r.Status != http.StatusOK {
		t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	var m map[string]any
	decodeJSON(t, r.Body, &m)
	return m
}

func active(m map[string]any) bool { return m["active"] == true }

// loginWithRefresh signs a person in to a and returns the first tokens.
func (s *testServer) loginWithRefresh(t testing.TB, a app, email string, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	b := s.signedIn(t, email)
	ar := a.RP.authURL(opts...)
	tok, _ := a.RP.exchange(ar, b.authorizeTo(a, ar))
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for a client allowed the refresh_token grant")
	}
	return tok
}

// TestRefreshRotationAndReuse: RFC 9700 §4.14.2. Every refresh returns a
// new refresh token and spends the old one; presenting a spent token
// after the grace window revokes the whole family.
func TestRefreshRotationAndReuse(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	rs := s.newApp(t, "Resource server", "")
	first := s.loginWithRefresh(t, a, "ada@example.com")

	second, err := refreshVia(a, first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh token not rotated")
	}
	if st, _ := userinfoStatus(t, s, second.AccessToken); st != http.StatusOK {
		t.Fatalf("userinfo with the refreshed access token: %d", st)
	}
	if active(s.introspect(t, rs, first.RefreshToken)) {
		t.Error("a spent refresh token introspects as active")
	}

	s.Clock.Advance(6 * time.Second) // past the 5 s grace window
	_, err = refreshVia(a, first.RefreshToken)
	if got := retrieveErrorCode(t, err); got != "invalid_grant" {
		t.Fatalf("reuse: %q, want invalid_grant", got)
	}
	// The whole family is gone: the successor, and every access token.
	if _, err := refreshVia(a, second.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
		t.Error("the successor still works after reuse was detected")
	}
	for name, tok := range map[string]string{"first access token": first.AccessToken, "second access token": second.AccessToken, "successor": second.RefreshToken} {
		if active(s.introspect(t, rs, tok)) {
			t.Errorf("%s is active after reuse", name)
		}
	}
	if st, _ := userinfoStatus(t, s, second.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("userinfo after reuse: %d, want 401", st)
	}
}

// TestRefreshGraceWindow: a just-spent token re-presented within the grace
// window gets the same successor — never a different one — so two tabs or
// a retry do not log the person out; once the successor is spent, the old
// token is reuse.
func TestRefreshGraceWindow(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	first := s.loginWithRefresh(t, a, "ada@example.com")

	one := postForm(t, s.URL+"/token", refreshForm(first.RefreshToken, ""), a.ID, a.Secret)
	s.Clock.Advance(4 * time.Second)
	two := postForm(t, s.URL+"/token", refreshForm(first.RefreshToken, ""), a.ID, a.Secret)
	var r1, r2 struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	decodeJSON(t, one.Body, &r1)
	decodeJSON(t, two.Body, &r2)
	if one.Status != 200 || two.Status != 200 {
		t.Fatalf("statuses %d %d: %s %s", one.Status, two.Status, one.Body, two.Body)
	}
	if r1.RefreshToken != r2.RefreshToken {
		t.Fatal("the retry within the grace window got a different successor")
	}
	for _, at := range []string{r1.AccessToken, r2.AccessToken} {
		if st, _ := userinfoStatus(t, s, at); st != http.StatusOK {
			t.Errorf("access token from a graced refresh: userinfo %d", st)
		}
	}

	// Spend the successor; the old token is now reuse, even within the
	// window, because what it would answer with is gone.
	three := postForm(t, s.URL+"/token", refreshForm(r1.RefreshToken, ""), a.ID, a.Secret)
	if three.Status != 200 {
		t.Fatalf("refreshing the successor: %d %s", three.Status, three.Body)
	}
	again := postForm(t, s.URL+"/token", refreshForm(first.RefreshToken, ""), a.ID, a.Secret)
	assertTokenError(t, again, 400, "invalid_grant")
	var r3 struct {
		RefreshToken string `json:"refresh_token"`
	}
	decodeJSON(t, three.Body, &r3)
	assertTokenError(t, postForm(t, s.URL+"/token", refreshForm(r3.RefreshToken, ""), a.ID, a.Secret), 400, "invalid_grant")
}

// TestConcurrentRefresh: many requests with one refresh token, spread over
// two server instances on one Postgres database. Exactly one rotation
// happens. With the grace window every request gets that one successor;
// with strict rotation exactly one succeeds and the rest are reuse.
func TestConcurrentRefresh(t *testing.T) {
	tests := []struct {
		name        string
		grace       time.Duration
		wantSuccess int // -1: all
	}{
		{"with grace window", 0, -1},
		{"strict rotation", -1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServerOn(t, pgtest.NewStore(t), func(c *server.Config) { c.RefreshGrace = tt.grace })
			other := s.replica(t)
			a := s.newApp(t, "App", refreshGrants)
			first := s.loginWithRefresh(t, a, "ada@example.com")

			const n = 40
			var wg sync.WaitGroup
			results := make([]rawResponse, n)
			start := make(chan struct{})
			for i := range n {
				base := s.URL
				if i%2 == 1 {
					base = other.URL
				}
				wg.Go(func() {
					<-start
					results[i] = postForm(t, base+"/token", refreshForm(first.RefreshToken, ""), a.ID, a.Secret)
				})
			}
			close(start)
			wg.Wait()

			successors := map[string]bool{}
			ok := 0
			for _, r := range results {
				switch r.Status {
				case 200:
					ok++
					var body struct {
						RefreshToken string `json:"refresh_token"`
					}
					decodeJSON(t, r.Body, &body)
					successors[body.RefreshToken] = true
				case 400:
					var e tokenError
					decodeJSON(t, r.Body, &e)
					if e.Error != "invalid_grant" {
						t.Errorf("loser got %q, want invalid_grant", e.Error)
					}
				default:
					t.Errorf("status %d: %s", r.Status, r.Body)
				}
			}
			if len(successors) != 1 {
				t.Fatalf("%d different successors, want exactly 1", len(successors))
			}
			want := tt.wantSuccess
			if want < 0 {
				want = n
			}
			if ok != want {
				t.Errorf("%d successes, want %d", ok, want)
			}
		})
	}
}

// TestRefreshSessionBinding: without offline_access the refresh token dies
// with the login session; with it, it survives the session's end. App
// refreshes count as activity on the session.
func TestRefreshSessionBinding(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	s.createUser(t, "ada@example.com", testPassword)

	b := newBrowser(t, s.Issuer)
	p := b.get(s.URL + "/login")
	b.signIn(p, "ada@example.com", testPassword)
	bound := codeToken(t, b, a)
	offline := codeToken(t, b, a, oauth2.SetAuthURLParam("scope", "openid offline_access"))

	// Refreshing every 20 hours keeps the session alive past its 24 h idle
	// timeout, as browsing would.
	for range 3 {
		s.Clock.Advance(20 * time.Hour)
		tok, err := refreshVia(a, bound.RefreshToken)
		if err != nil {
			t.Fatalf("refresh of a session-bound token after 20 h: %v", err)
		}
		bound = tok
	}
	// Signing in again in the same browser ends the old session.
	p = b.get(s.URL + "/login")
	b.signIn(p, "ada@example.com", testPassword)
	if _, err := refreshVia(a, bound.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
		t.Error("a session-bound refresh token survived the end of its session")
	}
	if _, err := refreshVia(a, offline.RefreshToken); err != nil {
		t.Errorf("an offline_access refresh token died with the session: %v", err)
	}
}

// codeToken runs an authorization in a signed-in browser and redeems it.
func codeToken(t *testing.T, b *browser, a app, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	ar := a.RP.authURL(opts...)
	tok, _ := a.RP.exchange(ar, b.authorizeTo(a, ar))
	return tok
}

// TestRefreshLifetimes: per-client idle and absolute lifetimes.
func TestRefreshLifetimes(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants+`,"refresh_token_idle_lifetime":3600,"refresh_token_absolute_lifetime":10800`)
	rs := s.newApp(t, "RS", "")

	t.Run("idle", func(t *testing.T) {
		tok := s.loginWithRefresh(t, a, "idle@example.com", oauth2.SetAuthURLParam("scope", "openid offline_access"))
		s.Clock.Advance(time.Hour)
		if active(s.introspect(t, rs, tok.RefreshToken)) {
			t.Error("active after the idle lifetime")
		}
		if _, err := refreshVia(a, tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Error("refreshed after the idle lifetime")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		tok := s.loginWithRefresh(t, a, "busy@example.com", oauth2.SetAuthURLParam("scope", "openid offline_access"))
		var err error
		for i := range 3 {
			s.Clock.Advance(50 * time.Minute)
			if tok, err = refreshVia(a, tok.RefreshToken); err != nil {
				t.Fatalf("refresh %d within the absolute lifetime: %v", i, err)
			}
		}
		s.Clock.Advance(31 * time.Minute) // 181 minutes after sign-in
		if _, err := refreshVia(a, tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Error("refreshed after the absolute lifetime")
		}
	})
}

// TestRefreshScopeAndClient: RFC 6749 §6 — a refresh may narrow the scope,
// never widen it, and only the client the token was issued to may use it.
func TestRefreshScopeAndClient(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	other := s.newApp(t, "Other", refreshGrants)
	rs := s.newApp(t, "RS", "")
	tok := s.loginWithRefresh(t, a, "ada@example.com")

	stolen := postForm(t, s.URL+"/token", refreshForm(tok.RefreshToken, ""), other.ID, other.Secret)
	assertTokenError(t, stolen, 400, "invalid_grant")
	wider := postForm(t, s.URL+"/token", refreshForm(tok.RefreshToken, "openid profile email offline_access"), a.ID, a.Secret)
	assertTokenError(t, wider, 400, "invalid_scope")

	narrow := postForm(t, s.URL+"/token", refreshForm(tok.RefreshToken, "openid"), a.ID, a.Secret)
	if narrow.Status != 200 {
		t.Fatalf("narrowing refresh (after failed attempts, which must not have spent it): %d %s", narrow.Status, narrow.Body)
	}
	var r struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
	}
	decodeJSON(t, narrow.Body, &r)
	if r.Scope != "openid" || s.introspect(t, rs, r.AccessToken)["scope"] != "openid" {
		t.Errorf("narrowed scope = %q", r.Scope)
	}
	// The new refresh token keeps the original scope.
	full := postForm(t, s.URL+"/token", refreshForm(r.RefreshToken, "openid profile email"), a.ID, a.Secret)
	if full.Status != 200 {
		t.Errorf("refresh back to the original scope: %d %s", full.Status, full.Body)
	}
}

// TestSpentRefreshTokenSurvivesRestart: reuse state lives in the database,
// so restarting every instance does not make a spent token usable again.
func TestSpentRefreshTokenSurvivesRestart(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	tok := s.loginWithRefresh(t, a, "ada@example.com")
	if r := postForm(t, s.URL+"/token", refreshForm(tok.RefreshToken, ""), a.ID, a.Secret); r.Status != 200 {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	fresh := s.replica(t)
	s.Stop()
	s.Clock.Advance(time.Minute)
	r := postForm(t, fresh.URL+"/token", refreshForm(tok.RefreshToken, ""), a.ID, a.Secret)
	assertTokenError(t, r, 400, "invalid_grant")
}

// TestRefreshRacingRevocation: a refresh racing a revocation never mints a
// token that outlives the revocation.
func TestRefreshRacingRevocation(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", refreshGrants)
	rs := s.newApp(t, "RS", "")
	for i := range 15 {
		tok := s.loginWithRefresh(t, a, "racer"+string(rune('a'+i))+"@example.com")
		var refreshed, revoked rawResponse
		var wg sync.WaitGroup
		wg.Go(func() { refreshed = postForm(t, s.URL+"/token", refreshForm(tok.RefreshToken, ""), a.ID, a.Secret) })
		wg.Go(func() {
			revoked = postForm(t, s.URL+"/revoke", url.Values{"token": {tok.RefreshToken}}, a.ID, a.Secret)
		})
		wg.Wait()
		if revoked.Status != 200 {
			t.Fatalf("revoke: %d %s", revoked.Status, revoked.Body)
		}
		if refreshed.Status == 200 {
			var r struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
			}
			decodeJSON(t, refreshed.Body, &r)
			for name, tk := range map[string]string{"refresh token": r.RefreshToken, "access token": r.AccessToken} {
				if active(s.introspect(t, rs, tk)) {
					t.Errorf("round %d: the %s minted in the race outlived the revocation", i, name)
				}
			}
		}
	}
}

// TestResourceIndicatorsOnUserTokens: RFC 8707 §2.2 — resource at the
// token endpoint, on a code exchange or a refresh, picks the access
// token's audience among those the client registered.
func TestResourceIndicatorsOnUserTokens(t *testing.T) {
	s := newTestServer(t)
	const api = "https://api.example.com"
	a := s.newApp(t, "App", refreshGrants+`,"allowed_resources":["`+api+`"]`)
	rs := s.newApp(t, "RS", "")
	b := s.signedIn(t, "ada@example.com")

	ar := a.RP.authURL()
	tok, err := a.RP.config.Exchange(a.RP.ctx, b.authorizeTo(a, ar), oauth2.VerifierOption(ar.Verifier), oauth2.SetAuthURLParam("resource", api))
	if err != nil {
		t.Fatalf("exchange with a resource: %v", err)
	}
	if aud := s.introspect(t, rs, tok.AccessToken)["aud"]; !sameStrings(aud, api) {
		t.Errorf("aud after the code exchange = %v, want [%s]", aud, api)
	}
	// A token for the API is not a token for userinfo.
	if st, _ := userinfoStatus(t, s, tok.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("userinfo with an API token: %d, want 401", st)
	}

	bad := postForm(t, s.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": {"https://other.example.com"}}, a.ID, a.Secret)
	assertTokenError(t, bad, 400, "invalid_target")
	good := postForm(t, s.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": {api}}, a.ID, a.Secret)
	if good.Status != 200 {
		t.Fatalf("refresh with a resource (the refused attempt must not have spent the token): %d %s", good.Status, good.Body)
	}
	var r struct {
		AccessToken string `json:"access_token"`
	}
	decodeJSON(t, good.Body, &r)
	if aud := s.introspect(t, rs, r.AccessToken)["aud"]; !sameStrings(aud, api) {
		t.Errorf("aud after the refresh = %v, want [%s]", aud, api)
	}
}

// sameStrings reports whether a decoded JSON array holds exactly want.
func sameStrings(v any, want ...string) bool {
	list, ok := v.([]any)
	if !ok || len(list) != len(want) {
		return false
	}
	for i := range want {
		if list[i] != want[i] {
			return false
		}
	}
	return true
}
