package integration

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// Benchmarks run against the real server over loopback HTTP on a real
// Postgres database:
//
//	go test -run '^$' -bench . -benchmem ./integration/

// BenchmarkSSOCodeFlow is what an app costs the IdP per sign-in when the
// person already has a session: GET /authorize (session lookup, code
// issued) and POST /token (client auth, code redeemed, grant created,
// access and ID token signed with RS256).
func BenchmarkSSOCodeFlow(b *testing.B) {
	s, a, br := benchSetup(b)
	b.ResetTimer()
	for b.Loop() {
		verifier := oauth2.GenerateVerifier()
		ar := a.RP.config.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
		resp, err := br.Get(ar)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || loc.Query().Get("code") == "" {
			b.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		form := tokenForm(loc.Query().Get("code"), a.RedirectURI, verifier)
		req, _ := http.NewRequest(http.MethodPost, s.Issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(a.ID, a.Secret)
		tr, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, tr.Body)
		tr.Body.Close()
		if tr.StatusCode != http.StatusOK {
			b.Fatalf("token: %d", tr.StatusCode)
		}
	}
}

// BenchmarkUserinfo: verify an RS256 access token, look up its grant and
// user.
func BenchmarkUserinfo(b *testing.B) {
	s, a, br := benchSetup(b)
	verifier := oauth2.GenerateVerifier()
	resp, err := br.Get(a.RP.config.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	tok, err := a.RP.config.Exchange(b.Context(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, s.Issuer+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			r, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != http.StatusOK {
				b.Fatalf("userinfo: %d", r.StatusCode)
			}
		}
	})
}

// BenchmarkPublicEndpoints: JWKS and discovery are served from memory.
func BenchmarkPublicEndpoints(b *testing.B) {
	s, _, _ := benchSetup(b)
	for _, path := range []string{"/jwks", "/.well-known/openid-configuration"} {
		b.Run(strings.TrimPrefix(path, "/"), func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := http.Get(s.Issuer + path)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
			})
		})
	}
}

// benchSetup starts a server with a signed-in person and a first-party
// app, and returns a cookie-carrying client that does not follow
// redirects.
func benchSetup(b *testing.B) (*testServer, app, *http.Client) {
	b.Helper()
	s := newTestServer(b)
	a := s.newApp(b, "Bench", `"skip_consent":true`)
	return s, a, s.signedIn(b, "bench@example.com").c
}
