package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

const (
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)

// device is one browser of a person, signed in through an app, with the
// tokens the app got in that login session.
type device struct {
	b   *browser
	tok *oauth2.Token
}

// signInDevice signs email in, in a new browser with this User-Agent,
// through a (which must allow the refresh_token grant), and returns the
// browser and the app's tokens.
func (s *testServer) signInDevice(t testing.TB, a app, email, ua string) device {
	t.Helper()
	b := newBrowser(t, s.Issuer)
	b.ua = ua
	tok, _ := s.fullLogin(t, b, a, email)
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	return device{b: b, tok: tok}
}

// accountItem is one entry of the account page's session or app list.
type accountItem struct {
	body   string
	fields url.Values // its form's hidden fields
}

// accountItems splits the account page's lists into their items.
func accountItems(body string) []accountItem {
	var out []accountItem
	// Items do not nest (the scope list inside an app item has plain <li>).
	parts := strings.Split(body, `<li class="item`)
	for _, part := range parts[1:] {
		end := strings.Index(part, "</form>")
		if end < 0 {
			continue
		}
		chunk := part[:end]
		out = append(out, accountItem{body: chunk, fields: hiddenFields(chunk)})
	}
	return out
}

// account opens the account page and fails unless it is shown.
func (b *browser) account() *page {
	b.t.Helper()
	p := b.get(b.issuer + "/account")
	if p.Status != http.StatusOK {
		b.t.Fatalf("GET /account: %d, Location %q", p.Status, p.Header.Get("Location"))
	}
	return p
}

// accountPost submits an account form with the page's CSRF token and the
// given fields, and returns the response (not followed).
func (b *browser) accountPost(p *page, path string, fields url.Values) *page {
	b.t.Helper()
	form := url.Values{"csrf_token": {hiddenFields(p.Body).Get("csrf_token")}}
	for k, v := range fields {
		form[k] = v
	}
	return b.post(b.issuer+path, form)
}

// wantSignedOut fails unless the browser's session is gone: the account
// page sends it to sign in.
func (b *browser) wantSignedOut(what string) {
	b.t.Helper()
	p := b.get(b.issuer + "/account")
	if p.Status != http.StatusFound || !strings.Contains(p.Header.Get("Location"), "/login?next=account") {
		b.t.Errorf("%s: GET /account = %d %q, want a redirect to sign in", what, p.Status, p.Header.Get("Location"))
	}
}

// sessionItem finds the session entry whose text contains label.
func sessionItem(t *testing.T, p *page, label string) accountItem {
	t.Helper()
	for _, it := range accountItems(p.Body) {
		if it.fields.Get("sid") != "" && strings.Contains(it.body, label) {
			return it
		}
	}
	t.Fatalf("no session %q on the account page:\n%s", label, p.Body)
	return accountItem{}
}

// TestAccountSessions: a person signed in on three devices sees all three,
// with "This device" on the right one; signing out another device ends
// that browser's session and the app's refresh tokens from it; "sign out
// of all other sessions" keeps this one; signing out this one clears the
// cookie.
func TestAccountSessions(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	a := s.newApp(t, "Ledger", refreshGrants)
	fx := s.signInDevice(t, a, "ada@example.com", uaFirefox)
	ch := s.signInDevice(t, a, "ada@example.com", uaChrome)
	sf := s.signInDevice(t, a, "ada@example.com", uaSafari)

	p := fx.b.account()
	for _, want := range []string{"Firefox 128 · Linux", "Chrome 126 · Windows", "Safari 17 · iOS", "127.0.0.1", "Ledger"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if n := strings.Count(p.Body, "This device"); n != 1 {
		t.Errorf(`"This device" appears %d times, want once`, n)
	}
	if it := sessionItem(t, p, "Firefox"); !strings.Contains(it.body, "This device") {
		t.Errorf("the Firefox session (this browser) is not marked as this device:\n%s", it.body)
	}
	if it := sessionItem(t, p, "Chrome"); strings.Contains(it.body, "This device") {
		t.Error("another browser's session is marked as this device")
	}
	// The page in Chinese.
	fx.b.lang = "zh-Hans"
	if zh := fx.b.account(); !strings.Contains(zh.Body, "此设备") || !strings.Contains(zh.Body, "退出所有其他会话") {
		t.Error("the Chinese account page lacks its translations")
	}
	fx.b.lang = ""

	t.Run("sign out another device", func(t *testing.T) {
		r := fx.b.accountPost(p, "/account/sessions/end", url.Values{"sid": {sessionItem(t, p, "Chrome").fields.Get("sid")}})
		if r.Status != http.StatusSeeOther || !strings.HasSuffix(r.Header.Get("Location"), "/account?done=signed_out") {
			t.Fatalf("sign out: %d %q", r.Status, r.Header.Get("Location"))
		}
		ch.b.wantSignedOut("Chrome after being signed out")
		if _, err := refreshVia(a, ch.tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Errorf("Chrome's refresh token: %v, want invalid_grant", err)
		}
		next, err := refreshVia(a, fx.tok.RefreshToken)
		if err != nil {
			t.Fatalf("this device's refresh token died too: %v", err)
		}
		fx.tok = next
		after, _ := fx.b.follow(r)
		if after.Status != http.StatusOK || strings.Contains(after.Body, "Chrome") || !strings.Contains(after.Body, "That session has been signed out.") {
			t.Errorf("account page after sign-out still lists Chrome or lacks the confirmation:\n%s", after.Body)
		}
	})

	t.Run("sign out of all other sessions", func(t *testing.T) {
		p := fx.b.account()
		r := fx.b.accountPost(p, "/account/sessions/end-others", nil)
		if r.Status != http.StatusSeeOther || !strings.HasSuffix(r.Header.Get("Location"), "/account?done=signed_out_others") {
			t.Fatalf("sign out others: %d %q", r.Status, r.Header.Get("Location"))
		}
		sf.b.wantSignedOut("Safari after sign-out of all others")
		if _, err := refreshVia(a, sf.tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Errorf("Safari's refresh token: %v, want invalid_grant", err)
		}
		after := fx.b.account()
		if items := accountItems(after.Body); len(items) != 2 || !strings.Contains(after.Body, "This device") {
			// this session and the app
			t.Errorf("after sign-out of others: %d items, want this session and the app", len(items))
		}
		if strings.Contains(after.Body, "/account/sessions/end-others") {
			t.Error(`"Sign out of all other sessions" offered with no other session`)
		}
	})

	t.Run("sign out this device", func(t *testing.T) {
		p := fx.b.account()
		r := fx.b.accountPost(p, "/account/sessions/end", url.Values{"sid": {sessionItem(t, p, "Firefox").fields.Get("sid")}})
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != s.Issuer+"/" {
			t.Fatalf("sign out this device: %d %q", r.Status, r.Header.Get("Location"))
		}
		if !strings.Contains(strings.Join(r.Header.Values("Set-Cookie"), "\n"), "gatehouse_session=;") {
			t.Errorf("cookie not cleared: %q", r.Header.Values("Set-Cookie"))
		}
		fx.b.wantSignedOut("this browser after signing itself out")
		if _, err := refreshVia(a, fx.tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Errorf("this device's refresh token: %v, want invalid_grant", err)
		}
	})
}

// TestAccountRevokeAccess: revoking an app's access kills its refresh
// tokens and makes its access tokens introspect inactive, and the app has
// to ask for consent again.
func TestAccountRevokeAccess(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	a := s.newApp(t, "Ledger", `"grant_types":["authorization_code","refresh_token"],"access_token_format":"opaque"`)
	other := s.newApp(t, "Other", refreshGrants)
	b := newBrowser(t, s.Issuer)
	tok, _ := s.fullLogin(t, b, a, "ada@example.com") // with consent
	oar := other.RP.authURL()
	other.RP.exchange(oar, b.authorizeTo(other, oar))

	p := b.account()
	var ledger accountItem
	for _, it := range accountItems(p.Body) {
		if it.fields.Get("client_id") == a.ID {
			ledger = it
		}
	}
	if !strings.Contains(ledger.body, "Ledger") || !strings.Contains(ledger.body, "See your email address") {
		t.Fatalf("the account page does not show Ledger and its scopes:\n%s", p.Body)
	}
	if m := s.introspect(t, a, tok.AccessToken); !active(m) {
		t.Fatal("access token inactive before revocation")
	}

	r := b.accountPost(p, "/account/apps/revoke", url.Values{"client_id": {a.ID}})
	if r.Status != http.StatusSeeOther || !strings.HasSuffix(r.Header.Get("Location"), "/account?done=revoked") {
		t.Fatalf("revoke: %d %q", r.Status, r.Header.Get("Location"))
	}
	if _, err := refreshVia(a, tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
		t.Errorf("refresh after revocation: %v, want invalid_grant", err)
	}
	if m := s.introspect(t, a, tok.AccessToken); active(m) {
		t.Error("opaque access token still active after revocation")
	}
	after := b.account()
	if strings.Contains(after.Body, `value="`+a.ID+`"`) || !strings.Contains(after.Body, "Other") {
		t.Error("after revocation the page still lists Ledger, or lost Other")
	}
	// The browser session lives on, but the app must ask again.
	ar := a.RP.authURL()
	cp, cb := b.open(ar.URL)
	if cb != nil || !strings.Contains(cp.Body, `name="decision"`) {
		t.Errorf("after revocation the app was not asked for consent again (callback %v)", cb)
	}
}

// TestAccountFormsAreGuarded: the account page needs a sign-in and comes
// back after it; its forms need the CSRF token; and another person's
// session or an app the person never used is "not found", changing
// nothing.
func TestAccountFormsAreGuarded(t *testing.T) {
	s := newTestServer(t)
	a := s.newApp(t, "Ledger", refreshGrants)
	s.createUser(t, "ada@example.com", testPassword)
	s.createUser(t, "bob@example.com", testPassword)
	ada := s.signInDevice(t, a, "ada@example.com", uaFirefox)
	bob := s.signInDevice(t, a, "bob@example.com", uaChrome)
	bobSID := sessionItem(t, bob.b.account(), "Chrome").fields.Get("sid")
	adaSID := sessionItem(t, ada.b.account(), "Firefox").fields.Get("sid")

	t.Run("signed out: sign in and come back", func(t *testing.T) {
		b := newBrowser(t, s.Issuer)
		p, _ := b.open(s.Issuer + "/account")
		final, cb := b.signIn(p, "ada@example.com", testPassword)
		if cb != nil || final.Status != http.StatusOK || final.URL.Path != "/account" {
			t.Errorf("after sign-in: %d at %s, want the account page", final.Status, final.URL)
		}
		// Posting while signed out changes nothing and asks to sign in.
		anon := newBrowser(t, s.Issuer)
		lp := anon.get(s.Issuer + "/login")
		r := anon.accountPost(lp, "/account/sessions/end", url.Values{"sid": {adaSID}})
		if r.Status != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "/login?next=account") {
			t.Errorf("signed-out post: %d %q", r.Status, r.Header.Get("Location"))
		}
	})

	p := ada.b.account()
	tests := []struct {
		name   string
		path   string
		fields url.Values
		csrf   string // "" keeps the page's token
		want   int
	}{
		{"no CSRF token", "/account/sessions/end", url.Values{"sid": {adaSID}}, "-", http.StatusForbidden},
		{"wrong CSRF token", "/account/sessions/end-others", nil, strings.Repeat("A", 43), http.StatusForbidden},
		{"no CSRF token on revoke", "/account/apps/revoke", url.Values{"client_id": {a.ID}}, "-", http.StatusForbidden},
		{"another person's session", "/account/sessions/end", url.Values{"sid": {bobSID}}, "", http.StatusNotFound},
		{"unknown session", "/account/sessions/end", url.Values{"sid": {"no-such-session"}}, "", http.StatusNotFound},
		{"no session id", "/account/sessions/end", nil, "", http.StatusNotFound},
		{"app never used", "/account/apps/revoke", url.Values{"client_id": {"no-such-client"}}, "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range tt.fields {
				form[k] = v
			}
			switch tt.csrf {
			case "":
				form.Set("csrf_token", hiddenFields(p.Body).Get("csrf_token"))
			case "-":
			default:
				form.Set("csrf_token", tt.csrf)
			}
			r := ada.b.post(s.Issuer+tt.path, form)
			if r.Status != tt.want {
				t.Fatalf("status %d, want %d", r.Status, tt.want)
			}
			if tt.want == http.StatusNotFound && (strings.Contains(r.Body, "bob@example.com") || strings.Contains(r.Body, "Chrome")) {
				t.Error("the not-found page reveals something about the other session")
			}
		})
	}
	// Nothing changed: both people are still signed in, tokens alive.
	ada.b.account()
	bob.b.account()
	for who, d := range map[string]device{"ada": ada, "bob": bob} {
		if _, err := refreshVia(a, d.tok.RefreshToken); err != nil {
			t.Errorf("%s's refresh token died: %v", who, err)
		}
	}
}
