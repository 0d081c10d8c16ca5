package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// logoutReceiver is an app's back-channel logout endpoint (OIDC
// Back-Channel Logout §2.5). It answers with the statuses in turn (the
// last one repeats); a status of 0 holds the request until the caller
// gives up on it.
type logoutReceiver struct {
	*httptest.Server
	t        testing.TB
	mu       sync.Mutex
	statuses []int
	n        int
	got      chan string
}

func newLogoutReceiver(t testing.TB, statuses ...int) *logoutReceiver {
	t.Helper()
	if len(statuses) == 0 {
		statuses = []int{http.StatusOK}
	}
	r := &logoutReceiver{t: t, statuses: statuses, got: make(chan string, 32)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			t.Errorf("back-channel logout by %s, want POST", req.Method)
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("back-channel logout Content-Type %q", ct)
		}
		tok := req.PostFormValue("logout_token")
		r.mu.Lock()
		st := r.statuses[min(r.n, len(r.statuses)-1)]
		r.n++
		r.mu.Unlock()
		r.got <- tok
		if st == 0 {
			<-req.Context().Done() // the IdP went away mid-request
			return
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for the next logout token the receiver is sent.
func (r *logoutReceiver) next() string {
	r.t.Helper()
	select {
	case tok := <-r.got:
		return tok
	case <-time.After(20 * time.Second):
		r.t.Fatal("no logout token within 20 s")
		return ""
	}
}

// none fails the test if the receiver was sent anything.
func (r *logoutReceiver) none() {
	r.t.Helper()
	select {
	case tok := <-r.got:
		r.t.Errorf("unexpected logout token %q", tok)
	default:
	}
}

// backchannelApp registers an app with a back-channel logout URI at rcv.
func (s *testServer) backchannelApp(t testing.TB, name string, rcv *logoutReceiver) app {
	t.Helper()
	return s.newApp(t, name, refreshGrants+`,"backchannel_logout_uri":"`+rcv.URL+`/backchannel-logout","backchannel_logout_session_required":true`)
}

// logoutClaims are the claims of a logout token (Back-Channel Logout §2.4).
type logoutClaims struct {
	SID    string                     `json:"sid"`
	JTI    string                     `json:"jti"`
	Events map[string]json.RawMessage `json:"events"`
	Nonce  *string                    `json:"nonce"`
	IAT    int64                      `json:"iat"`
}

// verifyLogoutToken checks a logout token the way an app does (§2.6):
// signature, iss, aud and exp with go-oidc against the JWKS, then typ,
// events, sid, and no nonce. It returns the sub and sid.
func verifyLogoutToken(t testing.TB, a app, tok string) (sub, sid string) {
	t.Helper()
	// §2.6 step 3: validate as an ID token would be, minus the nonce.
	v := a.RP.provider.Verifier(&oidc.Config{ClientID: a.ID, Now: a.RP.now})
	idt, err := v.Verify(a.RP.ctx, tok)
	if err != nil {
		t.Fatalf("verify logout token with go-oidc: %v", err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("logout token typ = %v, want logout+jwt", typ)
	}
	var c logoutClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok || len(c.Events) != 1 {
		t.Errorf("events = %v, want the back-channel logout event", c.Events)
	}
	if c.Nonce != nil {
		t.Error("logout token has a nonce (§2.4 forbids it)")
	}
	if c.JTI == "" || c.SID == "" || idt.Subject == "" {
		t.Errorf("logout token lacks jti, sid or sub: %+v sub %q", c, idt.Subject)
	}
	return idt.Subject, c.SID
}

// outboxRows returns the stored back-channel logouts.
func outboxRows(t testing.TB, s *testServer) []storage.BackchannelLogout {
	t.Helper()
	rows, err := s.Store.ListBackchannelLogouts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// eventually waits for cond, which watches work done by the server's
// background loops, for up to 20 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBackchannelLogoutAfterForcedLogout: an operator disables a user from
// the CLI (another process, its own connection). Every app that took part
// in the session and registered a back-channel URI receives a logout token
// naming the session and the user, found by the server's polling; apps
// without a URI, or not in the session, receive nothing; and the
// session's refresh tokens are dead.
func TestBackchannelLogoutAfterForcedLogout(t *testing.T) {
	dbURL := pgtest.NewDatabaseURL(t)
	s := newTestServerOn(t, openStore(t, dbURL))
	cli := users.New(openStore(t, dbURL), users.Options{Now: s.Clock.Now})
	rcvOne, rcvTwo, rcvIdle := newLogoutReceiver(t), newLogoutReceiver(t), newLogoutReceiver(t)
	one := s.backchannelApp(t, "One", rcvOne)
	two := s.backchannelApp(t, "Two", rcvTwo)
	idle := s.backchannelApp(t, "Idle", rcvIdle) // never used in the session
	plain := s.newApp(t, "Plain", refreshGrants)

	const email = "ada@example.com"
	b := s.signedIn(t, email)
	var sid string
	tokens := map[string]*oauth2.Token{}
	for _, a := range []app{one, two, plain} {
		ar := a.RP.authURL()
		tok, idt := a.RP.exchange(ar, b.authorizeTo(a, ar))
		// Every ID token issued under the session carries its sid.
		c := struct {
			SID string `json:"sid"`
		}{}
		if err := idt.Claims(&c); err != nil || c.SID == "" {
			t.Fatalf("ID token for %s has no sid (%v)", a.ID, err)
		}
		if sid != "" && c.SID != sid {
			t.Fatalf("sid %q, then %q in one session", sid, c.SID)
		}
		sid = c.SID
		tokens[a.ID] = tok
	}
	u, err := s.Store.GetUserByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := cli.Disable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		a   app
		rcv *logoutReceiver
	}{{one, rcvOne}, {two, rcvTwo}} {
		sub, gotSID := verifyLogoutToken(t, r.a, r.rcv.next())
		if sub != u.ID || gotSID != sid {
			t.Errorf("%s: logout token sub %q sid %q, want %q %q", r.a.ID, sub, gotSID, u.ID, sid)
		}
	}
	eventually(t, "both deliveries recorded", func() bool {
		rows := outboxRows(t, s)
		return len(rows) == 2 && rows[0].DeliveredAt != nil && rows[1].DeliveredAt != nil
	})
	rcvIdle.none()
	if idle.ID == "" {
		t.Fatal("no idle app")
	}

	for _, a := range []app{one, two, plain} {
		if _, err := refreshVia(a, tokens[a.ID].RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
			t.Errorf("%s: refresh after forced logout: %v, want invalid_grant", a.ID, err)
		}
	}
}

// TestBackchannelLogoutRetries: the app's endpoint fails; the IdP retries
// with backoff on its clock and delivers when the endpoint recovers.
func TestBackchannelLogoutRetries(t *testing.T) {
	s := newTestServer(t)
	rcv := newLogoutReceiver(t, http.StatusInternalServerError, http.StatusOK)
	a := s.backchannelApp(t, "App", rcv)
	const email = "ada@example.com"
	b := s.signedIn(t, email)
	codeToken(t, b, a)
	u, err := s.Store.GetUserByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	// Ended through the server's own store: the deliverer wakes at once.
	if _, err := s.Store.EndUserSessions(t.Context(), u.ID, s.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	s.Server.Backchannel().Wake() // the harness's store is not the server's waking one
	first := rcv.next()
	var row storage.BackchannelLogout
	eventually(t, "the failure recorded", func() bool {
		rows := outboxRows(t, s)
		row = rows[0]
		return len(rows) == 1 && row.LastError != ""
	})
	if row.Attempts != 1 || row.DeliveredAt != nil || !strings.Contains(row.LastError, "500") {
		t.Fatalf("after a 500: %+v, want attempt 1 waiting for a retry", row)
	}
	if wait := row.NextAttemptAt.Sub(s.Clock.Now()); wait != 10*time.Second {
		t.Errorf("first retry in %s, want 10s", wait)
	}

	// Not due a second before the backoff ends.
	s.Clock.Advance(9 * time.Second)
	if n, err := s.Server.Backchannel().DeliverDue(t.Context()); err != nil || n != 0 {
		t.Fatalf("DeliverDue before the backoff ended: %d, %v; want 0", n, err)
	}
	s.Clock.Advance(time.Second)
	s.Server.Backchannel().Wake()
	second := rcv.next()
	if first == second {
		t.Error("the retry resent the same token; want a fresh one (new jti, iat)")
	}
	verifyLogoutToken(t, a, second)
	eventually(t, "the delivery recorded", func() bool {
		rows := outboxRows(t, s)
		row = rows[0]
		return row.DeliveredAt != nil
	})
	if row.Attempts != 2 || row.LastError != "" {
		t.Errorf("after the retry: %+v, want delivered on attempt 2", row)
	}
	rcv.none()
}

// TestBackchannelLogoutSurvivesRestart: the server stops while a delivery
// is in flight. The outbox row stays claimed until its lease runs out;
// a new server on the same database then delivers it.
func TestBackchannelLogoutSurvivesRestart(t *testing.T) {
	s := newTestServer(t)
	rcv := newLogoutReceiver(t, 0, http.StatusNoContent) // hang, then succeed
	a := s.backchannelApp(t, "App", rcv)
	const email = "ada@example.com"
	b := s.signedIn(t, email)
	codeToken(t, b, a)
	u, err := s.Store.GetUserByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.EndUserSessions(t.Context(), u.ID, s.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	s.Server.Backchannel().Wake()
	rcv.next() // in flight
	s.Stop()
	rows := outboxRows(t, s)
	if len(rows) != 1 || rows[0].DeliveredAt != nil || rows[0].Attempts != 1 || rows[0].LastError != "" {
		t.Fatalf("after stopping mid-delivery: %+v, want one claimed row without an outcome", rows)
	}

	// Within the lease a new server leaves it alone...
	s2 := s.replica(t)
	if n, err := s2.Server.Backchannel().DeliverDue(t.Context()); err != nil || n != 0 {
		t.Fatalf("DeliverDue within the lease: %d, %v; want 0", n, err)
	}
	// ...and once the lease is over it delivers.
	s.Clock.Advance(time.Minute)
	s2.Server.Backchannel().Wake()
	verifyLogoutToken(t, a, rcv.next())
	eventually(t, "the delivery recorded", func() bool {
		rows = outboxRows(t, s)
		return rows[0].DeliveredAt != nil
	})
	if rows[0].Attempts != 2 {
		t.Errorf("delivered on attempt %d, want 2", rows[0].Attempts)
	}
}
