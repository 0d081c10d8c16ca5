package integration

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/internal/throttle"
)

// tryLogin opens the direct sign-in page at base and submits it once.
func (b *browser) tryLogin(base, email, password string) *page {
	b.t.Helper()
	p := b.get(base + "/login")
	if p.Status != http.StatusOK {
		b.t.Fatalf("GET /login: %d", p.Status)
	}
	form := hiddenFields(p.Body)
	form.Set("email", email)
	form.Set("password", password)
	return b.post(formAction(b.t, p), form)
}

// alertText is the message shown above the sign-in form, or "".
func alertText(p *page) string {
	m := alertRE.FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

var alertRE = regexp.MustCompile(`(?s)<div class="alert" role="alert" id="login-error">(.*?)</div>`)

// wantThrottled fails unless p is the sign-in form refused with 429,
// Retry-After retry (seconds) and msg.
func wantThrottled(t *testing.T, p *page, retry, msg string) {
	t.Helper()
	if p.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429; alert %q", p.Status, alertText(p))
	}
	if got := p.Header.Get("Retry-After"); got != retry {
		t.Errorf("Retry-After = %q, want %q", got, retry)
	}
	if got := alertText(p); got != msg {
		t.Errorf("message %q, want %q", got, msg)
	}
	if !strings.Contains(p.Body, `name="password"`) {
		t.Error("a throttled attempt should get the sign-in form back")
	}
}

func wantStatus(t *testing.T, p *page, status int, what string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("%s: status %d, want %d; alert %q", what, p.Status, status, alertText(p))
	}
}

// wantSignedIn fails unless p is a successful direct sign-in (a redirect
// to the IdP's home).
func wantSignedIn(t *testing.T, p *page, what string) {
	t.Helper()
	if p.Status != http.StatusSeeOther && p.Status != http.StatusFound {
		t.Fatalf("%s: status %d, want a redirect after signing in; alert %q", what, p.Status, alertText(p))
	}
}

const (
	msgWait1s   = "Too many sign-in attempts. Try again in 1 second."
	msgWait15m  = "Too many sign-in attempts. Try again in 15 minutes."
	wrongPasswd = "not the password at all"
)

// TestSignInThrottleDelaysThenLocks: repeated wrong passwords are delayed,
// then locked for 15 minutes (the right password too, unverified), and
// the lock ends when the clock has moved on.
func TestSignInThrottleDelaysThenLocks(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	b := newBrowser(t, s.Issuer)

	for range 5 {
		wantStatus(t, b.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "free failure")
	}
	wantThrottled(t, b.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), "1", msgWait1s)
	// Even the right password waits: nothing is checked while throttled.
	wantThrottled(t, b.tryLogin(s.Issuer, "ada@example.com", testPassword), "1", msgWait1s)
	s.Clock.Advance(time.Second)
	wantStatus(t, b.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "after the delay")
	wantThrottled(t, b.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), "2", "Too many sign-in attempts. Try again in 2 seconds.")
	for _, wait := range []time.Duration{2, 4, 8, 16} {
		s.Clock.Advance(wait * time.Second)
		wantStatus(t, b.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "after the delay")
	}
	// Ten failures: locked.
	wantThrottled(t, b.tryLogin(s.Issuer, "ada@example.com", testPassword), "900", msgWait15m)

	zh := newBrowser(t, s.Issuer)
	zh.lang = "zh-Hans"
	wantThrottled(t, zh.tryLogin(s.Issuer, "ada@example.com", testPassword), "900", "登录尝试次数过多，请 15 分钟后再试。")

	s.Clock.Advance(10 * time.Minute)
	wantThrottled(t, b.tryLogin(s.Issuer, "ada@example.com", testPassword), "300", "Too many sign-in attempts. Try again in 5 minutes.")
	s.Clock.Advance(5*time.Minute - time.Second)
	wantThrottled(t, b.tryLogin(s.Issuer, "ada@example.com", testPassword), "1", msgWait1s)
	s.Clock.Advance(time.Second)
	wantSignedIn(t, b.tryLogin(s.Issuer, "ada@example.com", testPassword), "after the lock")
}

// TestSignInThrottleUnknownEmailLooksTheSame: an address without an
// account is throttled exactly as one with, and the answers (status,
// headers, body) differ only in the email echoed and the CSRF token.
func TestSignInThrottleUnknownEmailLooksTheSame(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	known, unknown := newBrowser(t, s.Issuer), newBrowser(t, s.Issuer)

	normalize := func(p *page, email string) string {
		body := strings.ReplaceAll(p.Body, email, "EMAIL")
		return csrfRE.ReplaceAllString(body, `name="csrf_token" value="TOKEN"`)
	}
	headers := func(p *page) map[string]string {
		out := map[string]string{}
		for k, v := range p.Header {
			switch k {
			case "Date", "Content-Length", "Set-Cookie":
				continue
			}
			out[k] = strings.Join(v, ",")
		}
		return out
	}
	same := func(what string, a, b *page) {
		t.Helper()
		if a.Status != b.Status {
			t.Errorf("%s: status %d for the account, %d for the unknown email", what, a.Status, b.Status)
		}
		ha, hb := headers(a), headers(b)
		for k := range ha {
			if ha[k] != hb[k] {
				t.Errorf("%s: header %s = %q for the account, %q for the unknown email", what, k, ha[k], hb[k])
			}
		}
		for k := range hb {
			if _, ok := ha[k]; !ok {
				t.Errorf("%s: header %s only for the unknown email", what, k)
			}
		}
		if na, nb := normalize(a, "ada@example.com"), normalize(b, "nobody@example.com"); na != nb {
			t.Errorf("%s: bodies differ:\n%s\n---\n%s", what, na, nb)
		}
	}
	try := func(what string, wait time.Duration, wantStatus int) {
		t.Helper()
		s.Clock.Advance(wait)
		a := known.tryLogin(s.Issuer, "ada@example.com", wrongPasswd)
		b := unknown.tryLogin(s.Issuer, "nobody@example.com", wrongPasswd)
		if a.Status != wantStatus {
			t.Fatalf("%s: status %d, want %d", what, a.Status, wantStatus)
		}
		same(what, a, b)
	}
	for range 5 {
		try("free failure", 0, http.StatusUnauthorized)
	}
	try("delayed", 0, http.StatusTooManyRequests)
	for _, wait := range []time.Duration{1, 2, 4, 8, 16} {
		try("failure after the delay", wait*time.Second, http.StatusUnauthorized)
	}
	try("locked", 0, http.StatusTooManyRequests)
	try("still locked", 14*time.Minute, http.StatusTooManyRequests)
	try("after the lock", time.Minute, http.StatusUnauthorized)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="[^"]*"`)

// TestSignInThrottleSuccessResets: a correct sign-in clears the account's
// count, so the free attempts are back.
func TestSignInThrottleSuccessResets(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	b := newBrowser(t, s.Issuer)
	for range 5 {
		wantStatus(t, b.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "free failure")
	}
	s.Clock.Advance(time.Second)
	wantSignedIn(t, b.tryLogin(s.Issuer, "ADA@example.com", testPassword), "correct password after the delay")
	b2 := newBrowser(t, s.Issuer)
	for range 5 {
		wantStatus(t, b2.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "free again after success")
	}
	wantThrottled(t, b2.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), "1", msgWait1s)
}

// TestSignInThrottlePerIP: one address trying many accounts is throttled
// as a whole, however few tries each account gets; with the IP limit off
// it is not.
func TestSignInThrottlePerIP(t *testing.T) {
	t.Run("limited", func(t *testing.T) {
		// Every test client is 127.0.0.1: an IP limit of 6 delays from
		// the 3rd failure and locks at the 6th.
		s := newTestServer(t, func(c *server.Config) { c.LoginThrottleIPLimit = 6 })
		s.createUser(t, "ada@example.com", testPassword)
		b := newBrowser(t, s.Issuer)
		emails := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com", "f@example.com", "g@example.com"}
		for _, e := range emails[:3] {
			wantStatus(t, b.tryLogin(s.Issuer, e, wrongPasswd), http.StatusUnauthorized, "free failure for "+e)
		}
		wantThrottled(t, b.tryLogin(s.Issuer, emails[3], wrongPasswd), "1", msgWait1s)
		// A person with the right password from that address waits too.
		wantThrottled(t, newBrowser(t, s.Issuer).tryLogin(s.Issuer, "ada@example.com", testPassword), "1", msgWait1s)
		for i, wait := range []time.Duration{1, 2, 4} {
			s.Clock.Advance(wait * time.Second)
			wantStatus(t, b.tryLogin(s.Issuer, emails[3+i], wrongPasswd), http.StatusUnauthorized, "failure after the delay")
		}
		wantThrottled(t, b.tryLogin(s.Issuer, emails[6], wrongPasswd), "900", msgWait15m)
		s.Clock.Advance(15 * time.Minute)
		wantSignedIn(t, b.tryLogin(s.Issuer, "ada@example.com", testPassword), "after the IP lock")
	})
	t.Run("off", func(t *testing.T) {
		s := newTestServer(t, func(c *server.Config) { c.LoginThrottleIPLimit = -1 })
		b := newBrowser(t, s.Issuer)
		for i := range 20 {
			email := strconv.Itoa(i) + "@example.com"
			wantStatus(t, b.tryLogin(s.Issuer, email, wrongPasswd), http.StatusUnauthorized, "failure for "+email)
		}
	})
}

// TestSignInThrottleAcrossReplicas: the counts are in the database, so a
// lock made through one instance holds at another on the same database.
func TestSignInThrottleAcrossReplicas(t *testing.T) {
	s := newTestServer(t)
	s.createUser(t, "ada@example.com", testPassword)
	other := s.replica(t)
	b := newBrowser(t, s.Issuer)
	// Alternate between the instances: each sees the other's failures.
	for i := range 5 {
		base := []string{s.URL, other.URL}[i%2]
		wantStatus(t, b.tryLogin(base, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "free failure")
	}
	wantThrottled(t, b.tryLogin(other.URL, "ada@example.com", wrongPasswd), "1", msgWait1s)
	for _, wait := range []time.Duration{1, 2, 4, 8, 16} {
		s.Clock.Advance(wait * time.Second)
		wantStatus(t, b.tryLogin(s.URL, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "failure on the first instance")
	}
	wantThrottled(t, b.tryLogin(other.URL, "ada@example.com", testPassword), "900", msgWait15m)
	s.Clock.Advance(15 * time.Minute)
	wantSignedIn(t, b.tryLogin(other.URL, "ada@example.com", testPassword), "after the lock, on the other instance")
}

// TestSignInThrottleStoresNoEmail: what people type into the email field
// (sometimes their password) is not stored in the clear by the throttle.
func TestSignInThrottleStoresNoEmail(t *testing.T) {
	s := newTestServer(t)
	b := newBrowser(t, s.Issuer)
	const typed = "MyS3cretPassw0rd"
	wantStatus(t, b.tryLogin(s.Issuer, typed, wrongPasswd), http.StatusUnauthorized, "sign-in with a password as email")
	db, ok := s.Store.(*postgres.DB)
	if !ok {
		t.Fatalf("store is %T, want *postgres.DB", s.Store)
	}
	rows, err := db.Pool().Query(t.Context(), `SELECT key FROM login_throttles ORDER BY key`)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{throttle.AccountKey(typed), "ip:127.0.0.1"}
	if !slices.Equal(keys, want) {
		t.Errorf("throttle keys = %q, want %q", keys, want)
	}
	for _, k := range keys {
		if strings.Contains(strings.ToLower(k), strings.ToLower(typed)) {
			t.Errorf("throttle key %q holds what was typed", k)
		}
	}
}

// TestSignInThrottleDuringAuthorization: throttled in the middle of an
// app's sign-in, the person gets the same form back (the app named, the
// request kept), and once the wait is over signing in carries on to the
// app, whose x/oauth2 and go-oidc client gets its tokens.
func TestSignInThrottleDuringAuthorization(t *testing.T) {
	s := newTestServer(t)
	user := s.createUser(t, "ada@example.com", testPassword)
	a := s.newApp(t, "Ledger", `"skip_consent":true`)
	b := newBrowser(t, s.Issuer)
	ar := a.RP.authURL()
	p, cb := b.open(ar.URL)
	if cb != nil {
		t.Fatal("redirected to the app before signing in")
	}
	handle := hiddenFields(p.Body).Get("ar")
	if handle == "" {
		t.Fatalf("sign-in page without an authorization request:\n%s", p.Body)
	}
	for range 5 {
		p, _ = b.signIn(p, "ada@example.com", wrongPasswd)
		wantStatus(t, p, http.StatusUnauthorized, "wrong password")
	}
	p, _ = b.signIn(p, "ada@example.com", testPassword)
	wantThrottled(t, p, "1", msgWait1s)
	if got := hiddenFields(p.Body).Get("ar"); got != handle {
		t.Errorf("throttled form carries ar %q, want %q", got, handle)
	}
	if !strings.Contains(p.Body, "to continue to Ledger") {
		t.Error("throttled form no longer names the app")
	}
	s.Clock.Advance(time.Second)
	_, cb = b.signIn(p, "ada@example.com", testPassword)
	_, idt := a.RP.exchange(ar, a.RP.codeFrom(ar, cb))
	if idt == nil || idt.Subject != user.ID {
		t.Fatalf("ID token %+v, want subject %s", idt, user.ID)
	}
}
