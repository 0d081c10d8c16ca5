package ui

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAccountPage(t *testing.T) {
	r, _ := newRenderer(t)
	at := time.Date(2026, 12, 3, 9, 5, 0, 0, time.FixedZone("X", 3600))
	full := AccountPage{
		CSRFToken: "tok",
		Name:      "Ann Lee",
		Email:     "ann@example.com",
		NoticeKey: "account.notice.signed_out",
		Sessions: []AccountSession{
			{ID: "sid-here", Browser: "Firefox 128", OS: "Linux", IP: "192.0.2.1", Started: at, LastActive: at.Add(time.Hour), Current: true},
			{ID: "sid-other", IP: "192.0.2.2", Started: at, LastActive: at},
		},
		Apps: []AccountApp{{ClientID: "c1", Name: "Ledger <Books>", Scopes: []string{"openid", "invoices:read"}, Since: at}},
	}
	tests := []struct {
		name      string
		loc       Locale
		page      AccountPage
		want      []string
		sessions  int
		endOthers bool
	}{
		{"en, two sessions and an app", en, full, []string{
			"Signed in as Ann Lee", "That session has been signed out.", "Firefox 128 · Linux", "This device",
			"Unknown browser", "192.0.2.2", "2026-12-03 08:05 UTC", "2026-12-03 09:05 UTC", "Ledger <Books>",
			"Confirm your identity", "invoices:read", "Sign out of all other sessions", "Revoke access",
		}, 2, true},
		{"zh, two sessions and an app", zh, full, []string{"您的账号", "此设备", "未知浏览器", "退出所有其他会话", "撤销访问权限", "确认您的身份"}, 2, true},
		{"only this session, no apps", en, AccountPage{CSRFToken: "tok", Email: "ann@example.com",
			Sessions: []AccountSession{{ID: "sid-here", Current: true, Started: at, LastActive: at}}},
			[]string{"Signed in as ann@example.com", "No apps have access to your account."}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, doc := render(t, r, http.StatusOK, tt.loc, tt.page)
			checkCommon(t, w, doc, tt.loc)
			text := doc.one(t, "main").textContent()
			for _, s := range tt.want {
				if !strings.Contains(text, s) {
					t.Errorf("page lacks %q:\n%s", s, text)
				}
			}
			// Every form posts to the account page's handlers with the
			// CSRF token.
			forms := doc.all("form")
			for _, f := range forms {
				if f.attrs["method"] != "post" || !strings.HasPrefix(f.attrs["action"], "/account/") {
					t.Errorf("form posts %s to %s", f.attrs["method"], f.attrs["action"])
				}
				if hidden(t, f, "csrf_token") != "tok" {
					t.Errorf("form %s lacks the CSRF token", f.attrs["action"])
				}
			}
			ends := doc.all("form", "action", "/account/sessions/end")
			if len(ends) != tt.sessions {
				t.Fatalf("%d sign-out forms, want %d", len(ends), tt.sessions)
			}
			if hidden(t, ends[0], "sid") != "sid-here" {
				t.Error("first sign-out form is not for this session")
			}
			if got := len(doc.all("form", "action", "/account/sessions/end-others")) == 1; got != tt.endOthers {
				t.Errorf("sign-out-others form shown: %t, want %t", got, tt.endOthers)
			}
			if n := len(doc.all("span", "class", "badge")); n != 1 {
				t.Errorf("%d this-device badges, want 1", n)
			}
			if len(tt.page.Apps) > 0 && hidden(t, doc.one(t, "form", "action", "/account/apps/revoke"), "client_id") != "c1" {
				t.Error("revoke form does not name the client")
			}
		})
	}
}

func TestLoginPageCarriesNext(t *testing.T) {
	r, _ := newRenderer(t)
	_, doc := render(t, r, http.StatusOK, en, LoginPage{CSRFToken: "tok", Next: "account"})
	if got := hidden(t, doc.one(t, "form"), "next"); got != "account" {
		t.Errorf("next = %q, want account", got)
	}
	_, doc = render(t, r, http.StatusOK, en, LoginPage{CSRFToken: "tok"})
	if n := len(doc.all("input", "name", "next")); n != 0 {
		t.Error("login page without Next has a next field")
	}
}

func TestHomePageLinksAccountWhenSignedIn(t *testing.T) {
	r, _ := newRenderer(t)
	for _, tt := range []struct {
		page HomePage
		want int
	}{
		{HomePage{SignedIn: true, Email: "ann@example.com"}, 1},
		{HomePage{}, 0},
	} {
		_, doc := render(t, r, http.StatusOK, en, tt.page)
		if got := len(doc.all("a", "href", "/account")); got != tt.want {
			t.Errorf("signed in %t: %d links to /account, want %d", tt.page.SignedIn, got, tt.want)
		}
	}
}
