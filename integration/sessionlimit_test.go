package integration

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/server"
)

// signInVia starts an authorization request of a in a new browser and
// submits the sign-in form; it returns where that ended: the app's
// callback, or the page shown.
func (s *testServer) signInVia(t testing.TB, a app, email string, b *browser) (*page, bool) {
	t.Helper()
	ar := a.RP.authURL()
	p, cb := b.open(ar.URL)
	if cb != nil {
		t.Fatal("already signed in")
	}
	p, cb = b.signIn(p, email, testPassword)
	if cb != nil {
		a.RP.exchange(ar, a.RP.codeFrom(ar, cb))
		return p, true
	}
	return p, false
}

// signInDirect signs in at the IdP itself in b.
func (s *testServer) signInDirect(t testing.TB, email string, b *browser) (*page, bool) {
	t.Helper()
	p, _ := b.signIn(b.get(s.Issuer+"/login"), email, testPassword)
	return p, p.Status == http.StatusOK && p.URL.Path == "/"
}

func (s *testServer) liveSessions(t testing.TB, userID string) int {
	t.Helper()
	list, err := s.Store.ListUserSessions(t.Context(), userID, s.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// TestSessionLimitEvictsOldest: with a global limit of 2 (evict_oldest),
// a third sign-in ends the least recently active session: its browser is
// signed out and the app's refresh token from it dies.
func TestSessionLimitEvictsOldest(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.MaxSessionsPerUser = 2 })
	u := s.createUser(t, "ada@example.com", testPassword)
	a := s.newApp(t, "Ledger", refreshGrants)
	first := s.signInDevice(t, a, "ada@example.com", uaFirefox)
	s.Clock.Advance(time.Minute)
	second := s.signInDevice(t, a, "ada@example.com", uaChrome)
	s.Clock.Advance(time.Minute)
	third := s.signInDevice(t, a, "ada@example.com", uaSafari)

	first.b.wantSignedOut("the oldest session after a third sign-in")
	if _, err := refreshVia(a, first.tok.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
		t.Errorf("evicted session's refresh token: %v, want invalid_grant", err)
	}
	second.b.account()
	third.b.account()
	if n := s.liveSessions(t, u.ID); n != 2 {
		t.Errorf("%d live sessions, want 2", n)
	}
	// Signing in again in a browser that has a session replaces it and
	// evicts nobody.
	ar := a.RP.authURL()
	p, cb := third.b.open(ar.URL + "&prompt=login")
	if cb == nil {
		if _, cb = third.b.signIn(p, "ada@example.com", testPassword); cb == nil {
			t.Fatal("re-sign-in did not reach the app")
		}
	}
	second.b.account()
	if n := s.liveSessions(t, u.ID); n != 2 {
		t.Errorf("%d live sessions after re-sign-in, want 2", n)
	}
}

// TestSessionLimitPolicies: refusal, in both languages, and the per-client
// overrides in either direction.
func TestSessionLimitPolicies(t *testing.T) {
	refuse := func(max int) func(*server.Config) {
		return func(c *server.Config) { c.MaxSessionsPerUser, c.SessionLimitAction = max, "refuse" }
	}
	type step struct {
		via     string // app name, or "" to sign in at the IdP itself
		lang    string
		allowed bool
	}
	tests := []struct {
		name  string
		opts  []func(*server.Config)
		steps []step
	}{
		{"global refuse", []func(*server.Config){refuse(2)}, []step{
			{"Plain", "", true}, {"", "", true}, {"Plain", "", false}, {"", "zh-Hans", false},
		}},
		{"client tighter than the server", nil, []step{
			{"Strict", "", true}, {"Strict", "", false}, {"Plain", "", true}, {"", "", true},
		}},
		{"client unlimited under a strict server", []func(*server.Config){refuse(1)}, []step{
			{"", "", true}, {"Kiosk", "", true}, {"Kiosk", "", true}, {"Plain", "", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, tt.opts...)
			u := s.createUser(t, "ada@example.com", testPassword)
			apps := map[string]app{
				"Plain":  s.newApp(t, "Plain", `"skip_consent":true`),
				"Strict": s.newApp(t, "Strict", `"skip_consent":true,"max_sessions_per_user":1,"session_limit_action":"refuse"`),
				"Kiosk":  s.newApp(t, "Kiosk", `"skip_consent":true,"max_sessions_per_user":0`),
			}
			live := 0
			for i, st := range tt.steps {
				b := newBrowser(t, s.Issuer)
				b.lang = st.lang
				var (
					p  *page
					ok bool
				)
				if st.via == "" {
					p, ok = s.signInDirect(t, "ada@example.com", b)
				} else {
					p, ok = s.signInVia(t, apps[st.via], "ada@example.com", b)
				}
				if ok != st.allowed {
					t.Fatalf("step %d (%s): signed in %t, want %t (%d %s)", i, st.via, ok, st.allowed, p.Status, p.URL)
				}
				if ok {
					live++
				} else {
					want := "You are signed in on too many devices."
					if st.lang == "zh-Hans" {
						want = "您登录的设备过多。"
					}
					if p.Status != http.StatusConflict || !strings.Contains(p.Body, want) || !strings.Contains(p.Body, `name="password"`) {
						t.Errorf("step %d: refused sign-in page: %d, message %q shown %t", i, p.Status, want, strings.Contains(p.Body, want))
					}
					for _, c := range b.c.Jar.Cookies(mustParseURL(t, s.Issuer)) {
						if strings.Contains(c.Name, "session") {
							t.Errorf("step %d: refused sign-in set a session cookie", i)
						}
					}
				}
				if n := s.liveSessions(t, u.ID); n != live {
					t.Errorf("step %d: %d live sessions, want %d", i, n, live)
				}
			}
		})
	}
}

// TestSessionLimitAcrossReplicas: ten sign-ins of one person at the same
// moment, spread over two instances on one database, under a limit of
// three: exactly three sessions are left (evict_oldest), or exactly three
// sign-ins succeed (refuse).
func TestSessionLimitAcrossReplicas(t *testing.T) {
	for _, action := range []string{"evict_oldest", "refuse"} {
		t.Run(action, func(t *testing.T) {
			s := newTestServer(t, func(c *server.Config) {
				c.MaxSessionsPerUser, c.SessionLimitAction = 3, action
				// Ten sign-ins to one account at the same instant look
				// like a burst of guesses to the sign-in throttle, which
				// counts each attempt before its password is checked and
				// delays all but the first few. This test is about the
				// session limit, so the account throttle is off.
				c.LoginThrottleAccountLimit = -1
			})
			r := s.replica(t)
			u := s.createUser(t, "ada@example.com", testPassword)

			// Each browser loads the sign-in page (its CSRF cookie and
			// token) first; then all ten submit at once.
			const n = 10
			type attempt struct {
				b    *browser
				url  string
				form url.Values
			}
			attempts := make([]attempt, n)
			for i := range attempts {
				inst := s
				if i%2 == 1 {
					inst = r
				}
				b := newBrowser(t, inst.URL)
				p := b.get(inst.URL + "/login")
				form := hiddenFields(p.Body)
				form.Set("email", "ada@example.com")
				form.Set("password", testPassword)
				attempts[i] = attempt{b: b, url: inst.URL + "/login", form: form}
			}
			statuses := make([]int, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, a := range attempts {
				wg.Go(func() {
					<-start
					req, err := http.NewRequest(http.MethodPost, a.url, strings.NewReader(a.form.Encode()))
					if err != nil {
						errs[i] = err
						return
					}
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					resp, err := a.b.c.Do(req)
					if err != nil {
						errs[i] = err
						return
					}
					resp.Body.Close()
					statuses[i] = resp.StatusCode
				})
			}
			close(start)
			wg.Wait()
			var ok, refused int
			for i, st := range statuses {
				switch {
				case errs[i] != nil:
					t.Errorf("sign-in %d: %v", i, errs[i])
				case st == http.StatusSeeOther:
					ok++
				case st == http.StatusConflict:
					refused++
				default:
					t.Errorf("sign-in %d: status %d", i, st)
				}
			}
			if live := s.liveSessions(t, u.ID); live != 3 {
				t.Errorf("%d live sessions, want 3", live)
			}
			wantOK := n
			if action == "refuse" {
				wantOK = 3
			}
			if ok != wantOK || ok+refused != n {
				t.Errorf("%d sign-ins succeeded, %d refused; want %d and %d", ok, refused, wantOK, n-wantOK)
			}
		})
	}
}
