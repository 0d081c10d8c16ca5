package integration

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// app is a registered client with its relying party.
type app struct {
	ID, Secret, RedirectURI string
	RP                      *relyingParty
}

// newApp registers a confidential web client redirecting to appCallback.
// extra is spliced into the metadata JSON (e.g. `"skip_consent":true`).
func (s *testServer) newApp(t testing.TB, name, extra string) app {
	t.Helper()
	md := `{"client_name":"` + name + `","redirect_uris":["` + appCallback + `"]`
	if extra != "" {
		md += "," + extra
	}
	id, secret := s.registerClient(t, md+"}")
	return app{ID: id, Secret: secret, RedirectURI: appCallback, RP: newRP(t, s, id, secret, appCallback)}
}

// signedIn returns a browser that has signed in to the IdP directly (not
// through an app), and the user.
func (s *testServer) signedIn(t testing.TB, email string) *browser {
	t.Helper()
	s.createUser(t, email, testPassword)
	b := newBrowser(t, s.Issuer)
	p := b.get(s.Issuer + "/login")
	p, cb := b.signIn(p, email, testPassword)
	if cb != nil || p.Status != http.StatusOK {
		t.Fatalf("direct sign-in ended at %d %v", p.Status, cb)
	}
	return b
}

// authorizeTo runs an authorization request in b through sign-in (if
// asked) and consent (if shown) and returns the code.
func (b *browser) authorizeTo(a app, ar authRequest) string {
	b.t.Helper()
	p, cb := b.open(ar.URL)
	if cb == nil && strings.Contains(p.Body, `name="decision"`) {
		_, cb = b.consent(p, "allow")
	}
	if cb == nil {
		b.t.Fatalf("expected a redirect to the app, got %d:\n%s", p.Status, p.Body)
	}
	return a.RP.codeFrom(ar, cb)
}

// fullLogin takes a fresh browser through sign-in and consent for a and
// returns the tokens.
func (s *testServer) fullLogin(t testing.TB, b *browser, a app, email string, opts ...oauth2.AuthCodeOption) (*oauth2.Token, authRequest) {
	t.Helper()
	ar := a.RP.authURL(opts...)
	p, cb := b.open(ar.URL)
	if cb == nil {
		p, cb = b.signIn(p, email, testPassword)
	}
	if cb == nil {
		_, cb = b.consent(p, "allow")
	}
	tok, _ := a.RP.exchange(ar, a.RP.codeFrom(ar, cb))
	return tok, ar
}

// rawResponse is an HTTP response read in full.
type rawResponse struct {
	Status int
	Header http.Header
	Body   string
}

// postForm posts a form to the IdP, optionally with Basic credentials
// encoded as RFC 6749 §2.3.1 requires.
func postForm(t testing.TB, endpoint string, form url.Values, basicID, basicSecret string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	return doRaw(t, req)
}

func doRaw(t testing.TB, req *http.Request) rawResponse {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// userinfoStatus calls userinfo with a bearer token and returns the status
// and WWW-Authenticate header.
func userinfoStatus(t testing.TB, s *testServer, accessToken string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.Issuer+"/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	r := doRaw(t, req)
	return r.Status, r.Header.Get("WWW-Authenticate")
}

// retrieveErrorCode is the OAuth error code of a failed x/oauth2 exchange.
func retrieveErrorCode(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("exchange succeeded, want an error")
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a RetrieveError", err)
	}
	return re.ErrorCode
}
