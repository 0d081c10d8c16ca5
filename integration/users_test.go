package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// trySignIn submits the sign-in form in b and returns the status of the
// answer (303 on success, 401 on failure).
func (b *browser) trySignIn(email, password string) int {
	b.t.Helper()
	p := b.get(b.issuer + "/login")
	form := hiddenFields(p.Body)
	form.Set("email", email)
	form.Set("password", password)
	return b.post(formAction(b.t, p), form).Status
}

// hasSession reports whether b still has a login session at the IdP, as
// an app sees it: prompt=none yields a code, or login_required.
func (b *browser) hasSession(a app) bool {
	b.t.Helper()
	ar := a.RP.authURL(oauth2.SetAuthURLParam("prompt", "none"))
	_, cb := b.open(ar.URL)
	if cb == nil {
		b.t.Fatal("prompt=none did not redirect to the app")
	}
	switch e := cb.Query().Get("error"); e {
	case "":
		return cb.Query().Get("code") != ""
	case "login_required":
		return false
	default:
		b.t.Fatalf("prompt=none: error %s", e)
		return false
	}
}

// TestDisableAndSetPasswordEndEverything: disabling a user, or setting a
// new password, as idp users disable / set-password do (through their own
// store handle), revokes every grant of the user and ends their sessions:
// refresh fails and introspection says inactive at once, on this server,
// with no restart; the browser is signed out. JWT access tokens still
// verify locally (that cannot be helped) until they expire, 10 minutes
// later by default.
func TestDisableAndSetPasswordEndEverything(t *testing.T) {
	const newPassword = "a completely new password"
	for _, action := range []string{"disable", "set-password"} {
		t.Run(action, func(t *testing.T) {
			dbURL := pgtest.NewDatabaseURL(t)
			s := newTestServerOn(t, openStore(t, dbURL))
			// What the CLI does: its own connection, the default argon2id
			// parameters.
			cli := users.New(openStore(t, dbURL), users.Options{Now: s.Clock.Now})
			a := s.newApp(t, "App", refreshGrants)
			op := s.newApp(t, "Opaque app", refreshGrants+`,"access_token_format":"opaque"`)
			rs := s.newMachine(t, "Resource server", "").asApp()

			const email = "ada@example.com"
			b := s.signedIn(t, email)
			u, err := s.Store.GetUserByEmail(t.Context(), email)
			if err != nil {
				t.Fatal(err)
			}
			bound := codeToken(t, b, a)
			offline := codeToken(t, b, a, oauth2.SetAuthURLParam("scope", "openid offline_access"))
			opaque := codeToken(t, b, op)
			// Someone else's tokens must not be touched.
			bystander := s.loginWithRefresh(t, a, "bystander@example.com")

			accessTokens := map[string]string{"session-bound JWT": bound.AccessToken, "offline JWT": offline.AccessToken, "opaque": opaque.AccessToken}
			refreshTokens := map[string]struct {
				client app
				token  string
			}{"session-bound": {a, bound.RefreshToken}, "offline": {a, offline.RefreshToken}, "opaque client's": {op, opaque.RefreshToken}}
			for name, tk := range accessTokens {
				if !active(s.introspect(t, rs, tk)) {
					t.Fatalf("%s access token inactive before %s", name, action)
				}
			}
			if !b.hasSession(a) {
				t.Fatal("no session before " + action)
			}
			if p := b.get(s.URL + "/"); !strings.Contains(p.Body, email) {
				t.Fatal("the home page does not show the person signed in before " + action)
			}

			var ended users.Ended
			if action == "disable" {
				ended, err = cli.Disable(t.Context(), u.ID)
			} else {
				ended, err = cli.SetPassword(t.Context(), u.ID, newPassword)
			}
			if err != nil {
				t.Fatal(err)
			}
			if ended.Sessions != 1 || ended.Grants != 3 {
				t.Errorf("ended %d sessions and %d grants, want 1 and 3", ended.Sessions, ended.Grants)
			}

			// At once: refresh, introspection, userinfo, the session.
			for name, rt := range refreshTokens {
				if _, err := refreshVia(rt.client, rt.token); retrieveErrorCode(t, err) != "invalid_grant" {
					t.Errorf("%s refresh token still refreshes after %s", name, action)
				}
				s.assertInactive(t, rt.client, name+" refresh token", rt.token)
			}
			for name, tk := range accessTokens {
				s.assertInactive(t, rs, name+" access token", tk)
				if st, _ := userinfoStatus(t, s, tk); st != http.StatusUnauthorized {
					t.Errorf("userinfo with the %s access token: %d, want 401", name, st)
				}
			}
			if b.hasSession(a) {
				t.Errorf("the browser is still signed in after %s", action)
			}
			if p := b.get(s.URL + "/"); strings.Contains(p.Body, email) {
				t.Errorf("the home page still shows %s signed in", email)
			}
			// JWTs still verify where nobody asks Gatehouse...
			for _, tk := range []string{bound.AccessToken, offline.AccessToken} {
				if _, err := verifyLocally(t.Context(), s, tk); err != nil {
					t.Errorf("a JWT access token no longer verifies locally: %v (it should fade at exp, not before)", err)
				}
			}
			// ...and the bystander is untouched.
			if !active(s.introspect(t, rs, bystander.AccessToken)) {
				t.Error("another user's access token was ended")
			}
			if _, err := refreshVia(a, bystander.RefreshToken); err != nil {
				t.Errorf("another user's refresh token was ended: %v", err)
			}

			// Signing in again.
			fresh := newBrowser(t, s.Issuer)
			switch action {
			case "disable":
				if st := fresh.trySignIn(email, testPassword); st != http.StatusUnauthorized {
					t.Errorf("a disabled user signed in: %d", st)
				}
				if err := cli.Enable(t.Context(), u.ID); err != nil {
					t.Fatal(err)
				}
				if st := fresh.trySignIn(email, testPassword); st != http.StatusSeeOther {
					t.Errorf("sign-in after enable: %d, want 303", st)
				}
			case "set-password":
				if st := fresh.trySignIn(email, testPassword); st != http.StatusUnauthorized {
					t.Errorf("the old password still signs in: %d", st)
				}
				if st := fresh.trySignIn(email, newPassword); st != http.StatusSeeOther {
					t.Errorf("sign-in with the new password: %d, want 303", st)
				}
			}
			// The new sign-in works for apps; the old tokens stay dead.
			if tok := codeToken(t, fresh, a); !active(s.introspect(t, rs, tok.AccessToken)) {
				t.Error("a token from the new sign-in is inactive")
			}
			for name, rt := range refreshTokens {
				if _, err := refreshVia(rt.client, rt.token); retrieveErrorCode(t, err) != "invalid_grant" {
					t.Errorf("%s refresh token came back after signing in again", name)
				}
			}
			for name, tk := range accessTokens {
				s.assertInactive(t, rs, name+" access token after signing in again", tk)
			}
			if b.hasSession(a) {
				t.Error("the old browser's session came back")
			}

			// The bound: JWT access tokens fade within their lifetime.
			s.Clock.Advance(10 * time.Minute)
			if _, err := verifyLocally(t.Context(), s, bound.AccessToken); err == nil {
				t.Error("a JWT access token still verifies locally 10 minutes after issue")
			}
		})
	}
}
