package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// Benchmarks run against the real server over loopback HTTP on a real
// Postgres database, client and server in one process (so allocations
// and CPU are both sides'):
//
//	go test -run '^$' -bench . -benchmem ./integration/
//
// docs/performance.md has figures and how to read them.

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

// benchClient keeps enough idle connections for every parallel
// goroutine, so that no benchmark measures TCP connection setup.
func benchClient(b *testing.B) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// benchPost posts a form body with Basic credentials and returns the
// response body; anything but 200 is an error. It does not call b.Fatal,
// so that RunParallel goroutines may use it.
func benchPost(c *http.Client, endpoint, body, id, secret string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &benchError{resp.StatusCode, string(out)}
	}
	return out, nil
}

type benchError struct {
	status int
	body   string
}

func (e *benchError) Error() string { return http.StatusText(e.status) + ": " + e.body }

// benchBoth runs op as a sequential sub-benchmark (one request at a time:
// latency) and a parallel one (GOMAXPROCS goroutines: throughput).
func benchBoth(b *testing.B, op func() error) {
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkClientCredentials: POST /token with grant_type=client_credentials
// and Basic authentication. The client comes from the in-process cache
// and its secret is checked with SHA-256; jwt then signs an RS256 token
// in memory (no database), opaque inserts the token's hash (one INSERT).
func BenchmarkClientCredentials(b *testing.B) {
	s := newTestServer(b)
	c := benchClient(b)
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	for _, format := range []string{"jwt", "opaque"} {
		m := s.newMachine(b, "Bench "+format, `"access_token_format":"`+format+`"`)
		b.Run(format, func(b *testing.B) {
			benchBoth(b, func() error {
				_, err := benchPost(c, s.URL+"/token", body, m.ID, m.Secret)
				return err
			})
		})
	}
}

// BenchmarkRefreshRotation: POST /token with grant_type=refresh_token, each
// request spending the refresh token the previous one returned (a chain
// per goroutine). Per request: read the token, check the grant, the user
// and the login session (and record activity on it), sign a JWT access
// token, and spend-and-insert in one transaction that locks the grant.
func BenchmarkRefreshRotation(b *testing.B) {
	s := newTestServer(b)
	c := benchClient(b)
	a := s.newApp(b, "Bench", refreshGrants)
	br := s.signedIn(b, "bench@example.com")
	newChain := func() string {
		ar := a.RP.authURL()
		tok, _ := a.RP.exchange(ar, br.authorizeTo(a, ar))
		return tok.RefreshToken
	}
	rotate := func(rt *string) error {
		out, err := benchPost(c, s.URL+"/token", refreshForm(*rt, "").Encode(), a.ID, a.Secret)
		if err != nil {
			return err
		}
		var tf tokenFields
		if err := json.Unmarshal(out, &tf); err != nil {
			return err
		}
		*rt = tf.RefreshToken
		return nil
	}
	b.Run("sequential", func(b *testing.B) {
		rt := newChain()
		for b.Loop() {
			if err := rotate(&rt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		chains := make(chan string, runtime.GOMAXPROCS(0))
		for range cap(chains) {
			chains <- newChain()
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rt := <-chains
			for pb.Next() {
				if err := rotate(&rt); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkIntrospection: POST /introspect by a resource server (a
// confidential client, from the cache) for a person's access token. jwt:
// verify the RS256 signature, check the revocation list, the grant, the
// user and the login session; opaque: look the token up by hash, then the
// same grant, user and session checks.
func BenchmarkIntrospection(b *testing.B) {
	s := newTestServer(b)
	c := benchClient(b)
	rs := s.newMachine(b, "Resource server", "")
	br := s.signedIn(b, "bench@example.com")
	for _, format := range []string{"jwt", "opaque"} {
		a := s.newApp(b, "Bench "+format, `"skip_consent":true,"access_token_format":"`+format+`"`)
		ar := a.RP.authURL()
		tok, _ := a.RP.exchange(ar, br.authorizeTo(a, ar))
		body := url.Values{"token": {tok.AccessToken}}.Encode()
		b.Run(format, func(b *testing.B) {
			benchBoth(b, func() error {
				out, err := benchPost(c, s.URL+"/introspect", body, rs.ID, rs.Secret)
				if err == nil && !strings.HasPrefix(string(out), `{"active":true`) {
					err = &benchError{http.StatusOK, string(out)}
				}
				return err
			})
		})
	}
}
