package integration

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const postLogoutURI = "https://app.example/signed-out?from=idp"

// logoutApp is an app with a post-logout redirect URI and a back-channel
// receiver.
func (s *testServer) logoutApp(t *testing.T, rcv *logoutReceiver) app {
	t.Helper()
	return s.newApp(t, "Logout App", refreshGrants+
		`,"post_logout_redirect_uris":["`+postLogoutURI+`","https://app.example/bye"]`+
		`,"backchannel_logout_uri":"`+rcv.URL+`/bc"`)
}

// signedInTo signs a new browser in to a through the authorization code
// flow and returns the browser, the tokens and the raw ID token.
func (s *testServer) signedInTo(t *testing.T, a app, email string) (*browser, *oauth2.Token, string) {
	t.Helper()
	b := s.signedIn(t, email)
	ar := a.RP.authURL()
	tok, _ := a.RP.exchange(ar, b.authorizeTo(a, ar))
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no ID token")
	}
	return b, tok, raw
}

func logoutURL(s *testServer, params url.Values) string {
	return s.Issuer + "/logout?" + params.Encode()
}

// TestEndSessionEndpoint: RP-initiated logout with and without a
// trustworthy id_token_hint.
func TestEndSessionEndpoint(t *testing.T) {
	s := newTestServer(t)
	rcv := newLogoutReceiver(t)
	a := s.logoutApp(t, rcv)
	other := s.newApp(t, "Other", `"skip_consent":true,"post_logout_redirect_uris":["https://other.example/bye"]`)

	// endedOrNot checks what logout must (or must not) have done: the
	// session, the refresh token, and the logout token.
	check := func(t *testing.T, b *browser, tok *oauth2.Token, wantEnded bool) {
		t.Helper()
		if got := !b.hasSession(a); got != wantEnded {
			t.Fatalf("session ended = %v, want %v", got, wantEnded)
		}
		_, err := refreshVia(a, tok.RefreshToken)
		if wantEnded {
			if code := retrieveErrorCode(t, err); code != "invalid_grant" {
				t.Errorf("refresh after logout: %v, want invalid_grant", err)
			}
			_, sid := verifyLogoutToken(t, a, rcv.next())
			if sid == "" {
				t.Error("logout token without sid")
			}
		} else if err != nil {
			t.Errorf("refresh without logout: %v", err)
		}
	}

	t.Run("valid hint and registered URI: ended, redirected with state", func(t *testing.T) {
		b, tok, idt := s.signedInTo(t, a, "good@example.com")
		p := b.get(logoutURL(s, url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {postLogoutURI}, "state": {"st&ate=1"}}))
		if p.Status != http.StatusFound {
			t.Fatalf("status %d, want 302:\n%s", p.Status, p.Body)
		}
		if loc := p.Header.Get("Location"); loc != postLogoutURI+"&state=st%26ate%3D1" {
			t.Errorf("Location %q, want the registered URI with state appended", loc)
		}
		if !strings.Contains(p.Header.Get("Set-Cookie"), "gatehouse_session=;") {
			t.Errorf("session cookie not cleared: %q", p.Header.Values("Set-Cookie"))
		}
		check(t, b, tok, true)
	})

	t.Run("valid hint, unregistered URI: ended, no redirect", func(t *testing.T) {
		b, tok, idt := s.signedInTo(t, a, "bad-uri@example.com")
		p := b.get(logoutURL(s, url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://app.example/signed-out"}, "state": {"s"}}))
		if p.Status != http.StatusOK || p.Header.Get("Location") != "" || !strings.Contains(p.Body, "You are signed out") {
			t.Fatalf("got %d Location %q, want the signed-out page:\n%s", p.Status, p.Header.Get("Location"), p.Body)
		}
		check(t, b, tok, true)
	})

	t.Run("an expired hint is still a hint", func(t *testing.T) {
		b, tok, idt := s.signedInTo(t, a, "expired@example.com")
		s.Clock.Advance(time.Hour) // the ID token lives 10 minutes
		p := b.get(logoutURL(s, url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"x y"}}))
		if p.Status != http.StatusFound || p.Header.Get("Location") != "https://app.example/bye?state=x+y" {
			t.Fatalf("got %d Location %q, want a redirect to the second registered URI with state", p.Status, p.Header.Get("Location"))
		}
		check(t, b, tok, true)
	})

	t.Run("no hint: confirmation first, no redirect", func(t *testing.T) {
		b, tok, _ := s.signedInTo(t, a, "nohint@example.com")
		p := b.get(logoutURL(s, url.Values{"client_id": {a.ID}, "post_logout_redirect_uri": {postLogoutURI}, "state": {"s"}}))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Sign out of Gatehouse?") || !strings.Contains(p.Body, "Logout App") {
			t.Fatalf("got %d, want the confirmation page naming the app:\n%s", p.Status, p.Body)
		}
		check(t, b, tok, false)
		rcv.none()
		// Without the CSRF token the form does nothing.
		form := hiddenFields(p.Body)
		forged := url.Values{}
		for k, v := range form {
			if k != "csrf_token" {
				forged[k] = v
			}
		}
		if q := b.post(formAction(t, p), forged); q.Status != http.StatusForbidden {
			t.Errorf("confirmation without CSRF token: %d, want 403", q.Status)
		}
		check(t, b, tok, false)
		// Confirmed: ended, but the unverified redirect is not followed.
		q := b.post(formAction(t, p), form)
		if q.Status != http.StatusOK || q.Header.Get("Location") != "" || !strings.Contains(q.Body, "You are signed out") {
			t.Fatalf("confirmed: %d Location %q, want the signed-out page", q.Status, q.Header.Get("Location"))
		}
		check(t, b, tok, true)
	})

	t.Run("hint of an earlier session: confirmation", func(t *testing.T) {
		b, _, old := s.signedInTo(t, a, "earlier@example.com")
		// A new sign-in in the same browser starts a new session (and
		// ends the old one, which tells the app).
		p := b.get(s.Issuer + "/login")
		b.signIn(p, "earlier@example.com", testPassword)
		rcv.next()
		p = b.get(logoutURL(s, url.Values{"id_token_hint": {old}, "post_logout_redirect_uri": {postLogoutURI}, "state": {"s"}}))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Sign out of Gatehouse?") {
			t.Fatalf("got %d, want the confirmation page:\n%s", p.Status, p.Body)
		}
		// Confirmed with a valid hint: the registered URI is honoured.
		q := b.post(formAction(t, p), hiddenFields(p.Body))
		if q.Status != http.StatusSeeOther || q.Header.Get("Location") != postLogoutURI+"&state=s" {
			t.Fatalf("confirmed: %d Location %q, want 303 to the registered URI", q.Status, q.Header.Get("Location"))
		}
		if b.hasSession(a) {
			t.Error("session alive after confirmed logout")
		}
	})

	t.Run("client_id contradicting the hint: error, nothing ended", func(t *testing.T) {
		b, tok, idt := s.signedInTo(t, a, "mismatch@example.com")
		p := b.get(logoutURL(s, url.Values{"id_token_hint": {idt}, "client_id": {other.ID}, "post_logout_redirect_uri": {"https://other.example/bye"}}))
		if p.Status != http.StatusBadRequest || p.Header.Get("Location") != "" {
			t.Fatalf("got %d Location %q, want 400", p.Status, p.Header.Get("Location"))
		}
		check(t, b, tok, false)
	})

	t.Run("a tampered hint is no hint", func(t *testing.T) {
		b, tok, idt := s.signedInTo(t, a, "tampered@example.com")
		parts := strings.Split(idt, ".")
		parts[2] = strings.Repeat("A", len(parts[2]))
		p := b.get(logoutURL(s, url.Values{"id_token_hint": {strings.Join(parts, ".")}, "post_logout_redirect_uri": {postLogoutURI}}))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Sign out of Gatehouse?") {
			t.Fatalf("got %d, want the confirmation page", p.Status)
		}
		// An access token is not an ID token either.
		p = b.get(logoutURL(s, url.Values{"id_token_hint": {tok.AccessToken}, "post_logout_redirect_uri": {postLogoutURI}}))
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "Sign out of Gatehouse?") {
			t.Fatalf("access token as hint: got %d, want the confirmation page", p.Status)
		}
		check(t, b, tok, false)
	})

	t.Run("app POSTs the request", func(t *testing.T) {
		b, tok, idt := s.signedInTo(t, a, "post@example.com")
		// Cross-site, as from the app's page.
		form := url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {postLogoutURI}, "state": {"p"}}
		req, _ := http.NewRequest(http.MethodPost, s.Issuer+"/logout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		p := b.do(req)
		if p.Status != http.StatusSeeOther {
			t.Fatalf("POST /logout: %d, want 303 to the GET form", p.Status)
		}
		p, cb := b.follow(p)
		if cb == nil || cb.String() != postLogoutURI+"&state=p" {
			t.Fatalf("ended at %d %v, want the post-logout URI", p.Status, cb)
		}
		check(t, b, tok, true)
	})

	t.Run("not signed in: redirect still honoured", func(t *testing.T) {
		_, _, idt := s.signedInTo(t, a, "gone@example.com")
		fresh := newBrowser(t, s.Issuer)
		p := fresh.get(logoutURL(s, url.Values{"id_token_hint": {idt}, "post_logout_redirect_uri": {postLogoutURI}}))
		if p.Status != http.StatusFound || p.Header.Get("Location") != postLogoutURI {
			t.Fatalf("got %d Location %q", p.Status, p.Header.Get("Location"))
		}
		rcv.none() // nobody's session ended
	})

	t.Run("ui_locales", func(t *testing.T) {
		b, _, _ := s.signedInTo(t, a, "zh@example.com")
		p := b.get(logoutURL(s, url.Values{"ui_locales": {"zh-Hans"}}))
		if !strings.Contains(p.Body, "要退出 Gatehouse 吗？") {
			t.Fatalf("confirmation page not in zh-Hans:\n%s", p.Body)
		}
		q := b.post(formAction(t, p), hiddenFields(p.Body))
		if !strings.Contains(q.Body, "您已退出登录") {
			t.Errorf("signed-out page not in zh-Hans:\n%s", q.Body)
		}
		rcv.next()
	})
}

// TestHomePageSignOut: the home page offers a sign-out button to whoever
// is signed in.
func TestHomePageSignOut(t *testing.T) {
	s := newTestServer(t)
	b := s.signedIn(t, "home@example.com")
	p := b.get(s.Issuer + "/")
	if !strings.Contains(p.Body, "home@example.com") || !strings.Contains(p.Body, "/logout/confirm") {
		t.Fatalf("home page lacks the signed-in user or the sign-out form:\n%s", p.Body)
	}
	q := b.post(formAction(t, p), hiddenFields(p.Body))
	if q.Status != http.StatusOK || !strings.Contains(q.Body, "You are signed out") {
		t.Fatalf("sign out: %d:\n%s", q.Status, q.Body)
	}
	if p := b.get(s.Issuer + "/"); strings.Contains(p.Body, "home@example.com") {
		t.Error("still signed in after signing out")
	}
}
