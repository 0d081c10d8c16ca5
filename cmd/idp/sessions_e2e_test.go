package main

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

var hiddenInputRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// TestSessionsCLIAgainstRunningServer: a person signs in to an app on a
// running "idp dev"; the CLI lists the session (with its browser) and
// counts it for the app; "idp sessions revoke" ends it, and at once the
// browser is signed out and the app's refresh token is refused.
func TestSessionsCLIAgainstRunningServer(t *testing.T) {
	dir := t.TempDir()
	sel := []string{"--data-dir", dir}
	port := freePort(t)
	startServer(t, nil, "Discovery:", "dev", "--listen", "127.0.0.1:"+port, "--data-dir", dir)
	issuer := "http://localhost:" + port

	ada := createUser(t, sel, "ada@example.com")
	reg := idp(t, `{"client_name":"Ledger","redirect_uris":["https://ledger.example/cb"],"grant_types":["authorization_code","refresh_token"],"skip_consent":true}`,
		nil, append([]string{"clients", "create"}, sel...)...)
	if reg.code != 0 {
		t.Fatalf("clients create: %d %s", reg.code, reg.stderr)
	}
	var client struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(reg.stdout), &client); err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: client.ID, ClientSecret: client.Secret, RedirectURL: "https://ledger.example/cb",
		Scopes: []string{"openid"}, Endpoint: oauth2.Endpoint{AuthURL: issuer + "/authorize", TokenURL: issuer + "/token"}}

	// The browser: a cookie jar, Firefox's User-Agent, redirects by hand.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, u string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	verifier := oauth2.GenerateVerifier()
	resp, _ := do(http.MethodGet, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), nil)
	loginURL, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize did not redirect to sign in: %d", resp.StatusCode)
	}
	_, page := do(http.MethodGet, loginURL.String(), nil)
	form := url.Values{"email": {"ada@example.com"}, "password": {"a long enough password"}}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	resp, _ = do(http.MethodPost, issuer+"/login", form)
	cb, err := resp.Location()
	if err != nil || !strings.HasPrefix(cb.String(), "https://ledger.example/cb?") {
		t.Fatalf("sign-in did not return to the app: %d %v", resp.StatusCode, cb)
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Timeout: 10 * time.Second})
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %q)", err, tok.RefreshToken)
	}

	list := idp(t, "", nil, append([]string{"sessions", "list", "--json", "--user", ada.ID}, sel...)...)
	var sessions []sessionJSON
	if err := json.Unmarshal([]byte(list.stdout), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("sessions list = %q (%v), want one session", list.stdout, err)
	}
	if s := sessions[0]; s.Browser != "Firefox 128" || s.OS != "Linux" || s.IP != "127.0.0.1" || s.Email != "ada@example.com" {
		t.Errorf("listed session = %+v", s)
	}
	stats := idp(t, "", nil, append([]string{"sessions", "stats", "--json"}, sel...)...)
	var a activityJSON
	if err := json.Unmarshal([]byte(stats.stdout), &a); err != nil {
		t.Fatal(err)
	}
	if a.Sessions != 1 || a.Users != 1 || len(a.PerClient) != 1 || a.PerClient[0].ClientID != client.ID || a.PerClient[0].ClientName != "Ledger" {
		t.Errorf("sessions stats = %+v", a)
	}

	rev := idp(t, "", nil, append([]string{"sessions", "revoke", "--session", sessions[0].SID}, sel...)...)
	if rev.code != 0 || !strings.HasPrefix(rev.stdout, "ended session "+sessions[0].SID) {
		t.Fatalf("sessions revoke: %d %q %s", rev.code, rev.stdout, rev.stderr)
	}
	// At once: the browser is signed out...
	resp, _ = do(http.MethodGet, issuer+"/account", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/login?next=account") {
		t.Errorf("account page after forced logout: %d %q, want a redirect to sign in", resp.StatusCode, loc)
	}
	// ...and the app's refresh token is dead.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh after forced logout: %v, want invalid_grant", err)
	}
	if after := idp(t, "", nil, append([]string{"sessions", "list", "--json"}, sel...)...); strings.TrimSpace(after.stdout) != "[]" {
		t.Errorf("sessions list after revoke = %s", after.stdout)
	}
}
