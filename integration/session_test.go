package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

type sessionClaims struct {
	SID      string `json:"sid"`
	AuthTime int64  `json:"auth_time"`
}

func claimsOf(t *testing.T, idt *oidc.IDToken) sessionClaims {
	t.Helper()
	var c sessionClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSSOAcrossTwoClients: a second app authorizes without a second
// sign-in, within the same login session.
func TestSSOAcrossTwoClients(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	one := s.newApp(t, "One", `"skip_consent":true`)
	two := s.newApp(t, "Two", `"skip_consent":true`)
	b := newBrowser(t, s.Issuer)

	ar1 := one.RP.authURL()
	p, _ := b.open(ar1.URL)
	_, cb := b.signIn(p, "ada@example.com", testPassword)
	_, idt1 := one.RP.exchange(ar1, one.RP.codeFrom(ar1, cb))

	s.Clock.Advance(5 * time.Minute)
	ar2 := two.RP.authURL()
	p, cb = b.open(ar2.URL)
	if cb == nil {
		t.Fatalf("second app was shown a page instead of a redirect:\n%s", p.Body)
	}
	_, idt2 := two.RP.exchange(ar2, two.RP.codeFrom(ar2, cb))
	c1, c2 := claimsOf(t, idt1), claimsOf(t, idt2)
	if c1.SID == "" || c1.SID != c2.SID {
		t.Errorf("sid %q and %q, want the same session", c1.SID, c2.SID)
	}
	if c1.AuthTime != c2.AuthTime {
		t.Errorf("auth_time %d then %d, want the original sign-in time twice", c1.AuthTime, c2.AuthTime)
	}
	if idt1.Subject != idt2.Subject {
		t.Errorf("sub differs between apps")
	}
}

// TestPromptLoginAndMaxAge: OIDC Core §3.1.2.1 — prompt=login and an
// exceeded max_age force a new sign-in even with a live session.
func TestPromptLoginAndMaxAge(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	b := s.signedIn(t, "ada@example.com")
	signedInAt := s.Clock.Now().Unix()
	s.Clock.Advance(20 * time.Minute)

	t.Run("max_age not exceeded", func(t *testing.T) {
		ar := a.RP.authURL(oauth2.SetAuthURLParam("max_age", "3600"))
		_, idt := a.RP.exchange(ar, b.authorizeTo(a, ar))
		if c := claimsOf(t, idt); c.AuthTime != signedInAt {
			t.Errorf("auth_time %d, want %d", c.AuthTime, signedInAt)
		}
	})
	for _, tt := range []struct {
		name string
		opt  oauth2.AuthCodeOption
	}{
		{"prompt=login", oauth2.SetAuthURLParam("prompt", "login")},
		{"max_age exceeded", oauth2.SetAuthURLParam("max_age", "600")},
		{"max_age=0", oauth2.SetAuthURLParam("max_age", "0")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Each case signs in again; move past max_age=600 every time.
			s.Clock.Advance(11 * time.Minute)
			ar := a.RP.authURL(tt.opt)
			p, cb := b.open(ar.URL)
			if cb != nil {
				t.Fatalf("no sign-in required, redirected to %s", cb)
			}
			_, cb = b.signIn(p, "ada@example.com", testPassword)
			_, idt := a.RP.exchange(ar, a.RP.codeFrom(ar, cb))
			if c := claimsOf(t, idt); c.AuthTime != s.Clock.Now().Unix() {
				t.Errorf("auth_time %d, want the new sign-in %d", c.AuthTime, s.Clock.Now().Unix())
			}
		})
	}
}

// TestPromptNone: no page may be shown; what would need one is an error.
func TestPromptNone(t *testing.T) {
	s := newTestServer(t)
	third := s.newApp(t, "Third party", "")
	first := s.newApp(t, "First party", `"skip_consent":true`)
	none := oauth2.SetAuthURLParam("prompt", "none")

	b := newBrowser(t, s.Issuer)
	ar := first.RP.authURL(none)
	_, cb := b.open(ar.URL)
	if cb == nil || cb.Query().Get("error") != "login_required" || cb.Query().Get("state") != ar.State {
		t.Fatalf("prompt=none without a session: %v, want login_required with state", cb)
	}

	b = s.signedIn(t, "ada@example.com")
	ar = third.RP.authURL(none)
	if _, cb = b.open(ar.URL); cb == nil || cb.Query().Get("error") != "consent_required" {
		t.Errorf("prompt=none without consent: %v, want consent_required", cb)
	}
	ar = first.RP.authURL(none)
	if _, cb = b.open(ar.URL); cb == nil || first.RP.codeFrom(ar, cb) == "" {
		t.Errorf("prompt=none with a session and no consent needed: %v, want a code", cb)
	}
}

// TestConsent: remembered per user and client, covering the scopes
// granted; asked again for new scopes or prompt=consent; denial returns
// access_denied.
func TestConsent(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "Ledger", "")
	b := s.signedIn(t, "ada@example.com")
	openidOnly := oauth2.SetAuthURLParam("scope", "openid")

	ar := a.RP.authURL(openidOnly)
	p, cb := b.open(ar.URL)
	if cb != nil {
		t.Fatal("third-party app skipped consent")
	}
	if _, cb = b.consent(p, "allow"); a.RP.codeFrom(ar, cb) == "" {
		t.Fatal("no code after Allow")
	}

	ar = a.RP.authURL(openidOnly)
	if _, cb = b.open(ar.URL); cb == nil {
		t.Error("consent was not remembered")
	}

	ar = a.RP.authURL() // adds profile and email
	p, cb = b.open(ar.URL)
	if cb != nil {
		t.Fatal("new scopes were granted without asking")
	}
	for _, scope := range []string{"profile", "email"} {
		if !strings.Contains(p.Body, scope) && !strings.Contains(strings.ToLower(p.Body), scope) {
			t.Errorf("consent page does not mention %s", scope)
		}
	}
	if _, cb = b.consent(p, "allow"); a.RP.codeFrom(ar, cb) == "" {
		t.Fatal("no code")
	}

	ar = a.RP.authURL(oauth2.SetAuthURLParam("prompt", "consent"))
	p, cb = b.open(ar.URL)
	if cb != nil {
		t.Fatal("prompt=consent did not ask")
	}
	_, cb = b.consent(p, "deny")
	if cb == nil || cb.Query().Get("error") != "access_denied" || cb.Query().Get("state") != ar.State || cb.Query().Get("iss") != s.Issuer {
		t.Errorf("deny: %v, want access_denied with state and iss", cb)
	}

	// The denied request is finished; its consent form cannot be replayed.
	r := b.post(s.Issuer+"/consent", hiddenFields(p.Body))
	if r.Status != http.StatusBadRequest {
		t.Errorf("re-posting a finished consent: %d, want 400", r.Status)
	}
}

// TestCSRFProtectsForms: a form post without the token, with a wrong one,
// or from another site is refused and signs nobody in.
func TestCSRFProtectsForms(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	b := newBrowser(t, s.Issuer)
	p := b.get(s.Issuer + "/login")
	form := hiddenFields(p.Body)
	form.Set("email", "ada@example.com")
	form.Set("password", testPassword)

	missing := url.Values{"email": {"ada@example.com"}, "password": {testPassword}}
	wrong := url.Values{"email": {"ada@example.com"}, "password": {testPassword}, "csrf_token": {"forged"}}
	for name, f := range map[string]url.Values{"missing token": missing, "wrong token": wrong} {
		if r := b.post(s.Issuer+"/login", f); r.Status != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, r.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, s.Issuer+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	if r := b.do(req); r.Status != http.StatusForbidden {
		t.Errorf("cross-site post with a valid token: %d, want 403", r.Status)
	}
	if home := b.get(s.Issuer + "/"); strings.Contains(home.Body, "ada@example.com") {
		t.Error("a refused post signed the person in")
	}
	// The real form still works.
	if r := b.post(s.Issuer+"/login", form); r.Status != http.StatusSeeOther {
		t.Errorf("genuine sign-in: %d, want 303", r.Status)
	}
}

// TestSignInFailureRevealsNothing: an unknown email and a wrong password
// get the same status and the same page (the typed email aside).
func TestSignInFailureRevealsNothing(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	b := newBrowser(t, s.Issuer)
	attempt := func(email, password string) *page {
		p := b.get(s.Issuer + "/login")
		form := hiddenFields(p.Body)
		form.Set("email", email)
		form.Set("password", password)
		return b.post(s.Issuer+"/login", form)
	}
	wrong := attempt("ada@example.com", "wrong password!")
	unknown := attempt("nobody@example.com", "wrong password!")
	if wrong.Status != unknown.Status || wrong.Status != http.StatusUnauthorized {
		t.Errorf("statuses %d and %d, want 401 twice", wrong.Status, unknown.Status)
	}
	if a, b := strings.ReplaceAll(wrong.Body, "ada@example.com", "E"), strings.ReplaceAll(unknown.Body, "nobody@example.com", "E"); a != b {
		t.Errorf("pages differ:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(wrong.Body, `role="alert"`) {
		t.Error("the failure page shows no error")
	}
	if _, ok := wrong.Header["Set-Cookie"]; ok && strings.Contains(strings.Join(wrong.Header["Set-Cookie"], ";"), "gatehouse_session") {
		t.Error("a failed sign-in set a session cookie")
	}
}

// TestSessionCookie: HttpOnly, SameSite=Lax, Path=/, only a random secret,
// and a new session at every sign-in (the old one ends).
func TestSessionCookie(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	b := newBrowser(t, s.Issuer)
	signIn := func() *http.Cookie {
		p := b.get(s.Issuer + "/login")
		form := hiddenFields(p.Body)
		form.Set("email", "ada@example.com")
		form.Set("password", testPassword)
		r := b.post(s.Issuer+"/login", form)
		if r.Status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d, want 303", r.Status)
		}
		for _, c := range (&http.Response{Header: r.Header}).Cookies() {
			if c.Name == "gatehouse_session" {
				return c
			}
		}
		t.Fatal("no session cookie")
		return nil
	}
	first := signIn()
	if !first.HttpOnly || first.SameSite != http.SameSiteLaxMode || first.Path != "/" || first.Domain != "" {
		t.Errorf("cookie attributes: %+v", first)
	}
	if len(first.Value) < 43 {
		t.Errorf("cookie value has %d characters, want >= 43 (256 bits)", len(first.Value))
	}
	second := signIn()
	if second.Value == first.Value {
		t.Fatal("second sign-in kept the session id")
	}
	// The first cookie's session has ended.
	old := newBrowser(t, s.Issuer)
	old.c.Jar.SetCookies(mustParseURL(t, s.Issuer), []*http.Cookie{{Name: "gatehouse_session", Value: first.Value}})
	if p := old.get(s.Issuer + "/"); strings.Contains(p.Body, "ada@example.com") {
		t.Error("the superseded session still works")
	}
	if p := b.get(s.Issuer + "/"); !strings.Contains(p.Body, "ada@example.com") {
		t.Error("the new session does not work")
	}
}

// TestSessionTimeouts: idle and absolute timeouts, on the injected clock.
func TestSessionTimeouts(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "App", `"skip_consent":true`)
	signedIn := func(b *browser) bool {
		_, cb := b.open(a.RP.authURL().URL)
		return cb != nil
	}

	t.Run("idle", func(t *testing.T) {
		b := s.signedIn(t, "idle@example.com")
		s.Clock.Advance(23 * time.Hour)
		if !signedIn(b) {
			t.Fatal("session ended before the idle timeout")
		}
		s.Clock.Advance(24*time.Hour + time.Second)
		if signedIn(b) {
			t.Error("session survived 24 h idle")
		}
	})
	t.Run("absolute", func(t *testing.T) {
		b := s.signedIn(t, "busy@example.com")
		for i := 0; i < 7; i++ {
			s.Clock.Advance(23 * time.Hour)
			if i < 6 && !signedIn(b) {
				t.Fatalf("active session ended after %d h", (i+1)*23)
			}
		}
		// 161 h in, past the 7-day (168 h) cap after one more step.
		s.Clock.Advance(8 * time.Hour)
		if signedIn(b) {
			t.Error("session outlived the absolute timeout")
		}
	})
}
