package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// buildIDP builds the idp binary for tests that run the real CLI.
func buildIDP(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "idp")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/idp")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build idp: %v\n%s", err, out)
	}
	return bin
}

// runIDP runs the idp binary with args and returns its standard output.
func runIDP(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	// Only what the CLI needs: no IDP_ variables from the developer's
	// shell.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("idp %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// trail returns the audit events matching f, after the server has written
// everything it queued.
func (s *testServer) trail(t *testing.T, f storage.AuditFilter) []storage.AuditEvent {
	t.Helper()
	if err := s.Server.Audit().Flush(t.Context()); err != nil {
		t.Fatalf("flush audit: %v", err)
	}
	evs, err := s.Store.ListAuditEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("ListAuditEvents: %v", err)
	}
	return evs
}

// wantEvent is what one audit row must say. Empty fields must be empty.
type wantEvent struct {
	Type, Actor, UserID, ClientID, SessionID, IP string
	Details                                      map[string]any // these keys at least
}

func checkTrail(t *testing.T, got []storage.AuditEvent, want []wantEvent) {
	t.Helper()
	var gotTypes, wantTypes []string
	for _, e := range got {
		gotTypes = append(gotTypes, e.Type)
	}
	for _, w := range want {
		wantTypes = append(wantTypes, w.Type)
	}
	if !slices.Equal(gotTypes, wantTypes) {
		t.Fatalf("audit trail:\n got %v\nwant %v", gotTypes, wantTypes)
	}
	for i, w := range want {
		e := got[i]
		g := [6]string{e.Type, e.Actor, e.UserID, e.ClientID, e.SessionID, e.IP}
		if wf := [6]string{w.Type, w.Actor, w.UserID, w.ClientID, w.SessionID, w.IP}; g != wf {
			t.Errorf("event %d (type, actor, user, client, session, ip):\n got %q\nwant %q", i, g, wf)
		}
		for k, v := range w.Details {
			if e.Details[k] != v {
				t.Errorf("event %d (%s): details[%s] = %v, want %v (all: %v)", i, e.Type, k, e.Details[k], v, e.Details)
			}
		}
		if i > 0 && e.ID <= got[i-1].ID {
			t.Errorf("event %d: id %d not after %d", i, e.ID, got[i-1].ID)
		}
	}
}

// TestAuditTrail: a person's failed and successful sign-ins, consent, code
// exchange, refresh, refresh reuse, SSO into a second app and revocation,
// then an operator's CLI changes, leave exactly the expected rows; the
// session's story comes back in order through "idp audit list --session";
// nothing secret is in the trail.
func TestAuditTrail(t *testing.T) {
	dbURL := pgtest.NewDatabaseURL(t)
	s := newTestServerOn(t, openStore(t, dbURL))
	bin := buildIDP(t)

	// A fresh server created its signing keys: the system did that.
	keyEvents := s.trail(t, storage.AuditFilter{})
	if len(keyEvents) != 4 {
		t.Fatalf("start-up left %d events, want 4 key.created", len(keyEvents))
	}
	for _, e := range keyEvents {
		if e.Type != audit.KeyCreated || e.Actor != audit.ActorSystem || e.Details["kid"] == "" || e.Details["alg"] == nil {
			t.Errorf("start-up event %+v, want key.created by system with kid and alg", e)
		}
	}
	afterKeys := keyEvents[len(keyEvents)-1].ID

	ada := s.createUser(t, "ada@example.com", testPassword)
	a := s.newApp(t, "Ledger", `"grant_types":["authorization_code","refresh_token"]`)
	sso := s.newApp(t, "Wiki", refreshGrants)

	// Two failed sign-ins, then the right password, consent and the
	// code exchange.
	b := newBrowser(t, s.Issuer)
	ar := a.RP.authURL()
	p, _ := b.open(ar.URL)
	p, _ = b.signIn(p, "ada@example.com", "not the password")
	if p.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", p.Status)
	}
	p, _ = b.signIn(p, "nobody@example.com", testPassword)
	p, cb := b.signIn(p, "ada@example.com", testPassword)
	if cb != nil {
		t.Fatalf("no consent asked")
	}
	_, cb = b.consent(p, "allow")
	first, idt := a.RP.exchange(ar, a.RP.codeFrom(ar, cb))
	var claims struct {
		SID string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil || claims.SID == "" {
		t.Fatalf("no sid in the ID token: %v", err)
	}
	sid := claims.SID

	// A refresh, then the spent token again after the grace window.
	if _, err := refreshVia(a, first.RefreshToken); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	s.Clock.Advance(6 * time.Second)
	if _, err := refreshVia(a, first.RefreshToken); retrieveErrorCode(t, err) != "invalid_grant" {
		t.Fatalf("reuse was not refused")
	}

	// Single sign-on into a second app in the same session, whose
	// refresh token the app then revokes.
	ar2 := sso.RP.authURL()
	tok2, _ := sso.RP.exchange(ar2, b.authorizeTo(sso, ar2))
	if r := s.revoke(t, sso, tok2.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}

	// An operator disables ada and deletes the second app. Ids are the
	// order in which events reach the database: the server writes its
	// batches within 100 ms, which a person at a terminal never beats, but
	// this test would, so it lets the server's batch go first.
	if err := s.Server.Audit().Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	runIDP(t, bin, "users", "disable", ada.ID, "--database-url", dbURL)
	runIDP(t, bin, "clients", "delete", sso.ID, "--database-url", dbURL)

	const ip = "127.0.0.1"
	scope := "openid profile email"
	story := []wantEvent{
		{audit.LoginSucceeded, audit.User(ada.ID), ada.ID, a.ID, sid, ip, nil},
		{audit.ConsentGranted, audit.User(ada.ID), ada.ID, a.ID, sid, ip, map[string]any{"scope": scope}},
		{audit.TokenIssued, audit.Client(a.ID), ada.ID, a.ID, sid, ip, map[string]any{"grant_type": "authorization_code", "scope": scope}},
		{audit.TokenRefreshed, audit.Client(a.ID), ada.ID, a.ID, sid, ip, map[string]any{"grant_type": "refresh_token"}},
		{audit.RefreshReuseDetected, audit.Client(a.ID), ada.ID, a.ID, sid, ip, map[string]any{"grant_revoked": true}},
		{audit.TokenIssued, audit.Client(sso.ID), ada.ID, sso.ID, sid, ip, map[string]any{"grant_type": "authorization_code"}},
		{audit.TokenRevoked, audit.Client(sso.ID), ada.ID, sso.ID, sid, ip, map[string]any{"kind": "refresh_token", "grant_revoked": true}},
	}
	// Disabling the user ends the session: the end of its story.
	ended := wantEvent{audit.SessionRevoked, audit.ActorAdmin, ada.ID, "", sid, "", map[string]any{"by": "admin", "reason": "user_disabled"}}
	all := append([]wantEvent{
		// The typed email is not recorded; the account is, when it exists.
		{audit.LoginFailed, "", ada.ID, a.ID, "", ip, map[string]any{"reason": "bad_password"}},
		{audit.LoginFailed, "", "", a.ID, "", ip, map[string]any{"reason": "unknown_account"}},
	}, story...)
	all = append(all,
		wantEvent{audit.UserDisabled, audit.ActorAdmin, ada.ID, "", "", "", map[string]any{"sessions_ended": float64(1)}},
		ended,
		wantEvent{audit.ClientDeleted, audit.ActorAdmin, "", sso.ID, "", "", nil},
	)
	story = append(story, ended)
	got := s.trail(t, storage.AuditFilter{AfterID: afterKeys})
	checkTrail(t, got, all)
	for _, e := range got[:len(got)-3] { // all but the CLI's
		if e.UserAgent == "" {
			t.Errorf("%s: no user agent", e.Type)
		}
	}

	// The session's whole story, from the store and from the CLI.
	checkTrail(t, s.trail(t, storage.AuditFilter{SessionID: sid}), story)
	out := runIDP(t, bin, "audit", "list", "--session", sid, "--json", "--database-url", dbURL)
	var cliTypes []string
	for line := range strings.Lines(out) {
		var e struct {
			Type      string `json:"type"`
			SessionID string `json:"session_id"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit list --json: %q: %v", line, err)
		}
		if e.SessionID != sid {
			t.Errorf("audit list --session %s printed an event of session %q", sid, e.SessionID)
		}
		cliTypes = append(cliTypes, e.Type)
	}
	var storyTypes []string
	for _, w := range story {
		storyTypes = append(storyTypes, w.Type)
	}
	if !slices.Equal(cliTypes, storyTypes) {
		t.Errorf("idp audit list --session:\n got %v\nwant %v", cliTypes, storyTypes)
	}

	// Never a secret, token, code or password, nor the typed email.
	dump := runIDP(t, bin, "audit", "list", "--json", "--limit", "0", "--database-url", dbURL)
	for name, secret := range map[string]string{
		"password": testPassword, "wrong password": "not the password", "unknown email": "nobody@example.com",
		"email": "ada@example.com", "refresh token": first.RefreshToken, "access token": first.AccessToken,
		"client secret": a.Secret, "revoked token": tok2.RefreshToken,
	} {
		if strings.Contains(dump, secret) {
			t.Errorf("the audit trail contains the %s", name)
		}
	}
}

// TestAuditSurvivesShutdown: a graceful shutdown right after a burst of
// token requests writes every one of their events before Serve returns.
func TestAuditSurvivesShutdown(t *testing.T) {
	s := newTestServer(t)
	m := s.newMachine(t, "Batch job", "")
	c := &http.Client{Timeout: 30 * time.Second}
	form := url.Values{"grant_type": {"client_credentials"}}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 250 {
				st, body, err := httpPost(context.WithoutCancel(t.Context()), c, s.URL+"/token", form, m.ID, m.Secret)
				if err != nil || st != http.StatusOK {
					t.Errorf("token: %d %v %s", st, err, body)
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	s.Stop() // at once: the last batches are still queued

	evs, err := s.Store.ListAuditEvents(t.Context(), storage.AuditFilter{ClientID: m.ID, Types: []string{audit.TokenIssued}})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(evs)) != ok.Load() || ok.Load() != 2000 {
		t.Fatalf("%d tokens issued, %d token.issued events after shutdown; want 2000 of each", ok.Load(), len(evs))
	}
	for _, e := range evs[:1] {
		if e.Actor != audit.Client(m.ID) || e.IP != "127.0.0.1" || e.Details["grant_type"] != "client_credentials" {
			t.Errorf("machine token event %+v", e)
		}
	}
}

// TestAuditTokenEvents: the token events the main story does not reach —
// a machine JWT and an opaque access token revoked, a code replayed, a
// refresh retried within the grace window — each leave their row.
func TestAuditTokenEvents(t *testing.T) {
	s := newTestServer(t)
	start := s.trail(t, storage.AuditFilter{})
	after := start[len(start)-1].ID

	// A machine JWT, revoked by its client.
	m := s.newMachine(t, "Job", "")
	mt := m.token(t, s)
	if r := s.revoke(t, m.asApp(), mt.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("revoke machine token: %d", r.Status)
	}
	_, claims := jwtParts(t, mt.AccessToken)

	// An opaque access token of a person, revoked; then a refresh retried
	// within the grace window.
	op := s.newApp(t, "Opaque", refreshGrants+`,"access_token_format":"opaque"`)
	first := s.loginWithRefresh(t, op, "ada@example.com")
	if r := s.revoke(t, op, first.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("revoke opaque token: %d", r.Status)
	}
	for range 2 { // the second is the same refresh arriving twice
		if r := postForm(t, s.URL+"/token", refreshForm(first.RefreshToken, ""), op.ID, op.Secret); r.Status != http.StatusOK {
			t.Fatalf("refresh: %d %s", r.Status, r.Body)
		}
	}

	// A code redeemed twice.
	a := s.newApp(t, "Replayed", `"skip_consent":true`)
	b := s.signedIn(t, "bob@example.com")
	ar := a.RP.authURL()
	code := b.authorizeTo(a, ar)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.RedirectURI}, "code_verifier": {ar.Verifier}}
	for i, want := range []int{http.StatusOK, http.StatusBadRequest} {
		if r := postForm(t, s.URL+"/token", form, a.ID, a.Secret); r.Status != want {
			t.Fatalf("exchange %d: %d, want %d: %s", i+1, r.Status, want, r.Body)
		}
	}

	evs := s.trail(t, storage.AuditFilter{AfterID: after, Types: []string{
		audit.TokenRevoked, audit.TokenRefreshed, audit.CodeReplayed,
	}})
	if len(evs) != 5 {
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		t.Fatalf("got %v, want token.revoked ×2, token.refreshed ×2, code.replayed", types)
	}
	for _, tc := range []struct {
		name   string
		e      storage.AuditEvent
		typ    string
		client string
		sid    bool
		want   map[string]any
	}{
		{"machine JWT revoked", evs[0], audit.TokenRevoked, m.ID, false, map[string]any{"kind": "access_token", "format": "jwt", "jti": claims["jti"]}},
		{"opaque token revoked", evs[1], audit.TokenRevoked, op.ID, true, map[string]any{"kind": "access_token", "format": "opaque"}},
		{"refreshed", evs[2], audit.TokenRefreshed, op.ID, true, map[string]any{"retry": nil}},
		{"refresh retried", evs[3], audit.TokenRefreshed, op.ID, true, map[string]any{"retry": true}},
		{"code replayed", evs[4], audit.CodeReplayed, a.ID, true, map[string]any{"grant_revoked": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			if e.Type != tc.typ || e.ClientID != tc.client || e.Actor != audit.Client(tc.client) || (e.SessionID != "") != tc.sid {
				t.Errorf("event %+v: want %s by client %s, sid set %t", e, tc.typ, tc.client, tc.sid)
			}
			for k, v := range tc.want {
				if e.Details[k] != v {
					t.Errorf("details[%s] = %v, want %v (all: %v)", k, e.Details[k], v, e.Details)
				}
			}
		})
	}
}

// TestAuditThrottledSignIn: a sign-in refused by the throttle is a
// login.failed with reason throttled, naming no account (none was looked
// up) and not the email.
func TestAuditThrottledSignIn(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.LoginThrottleAccountLimit = 2 })
	start := s.trail(t, storage.AuditFilter{})
	s.createUser(t, "ada@example.com", testPassword)
	b := newBrowser(t, s.Issuer)
	wantStatus(t, b.tryLogin(s.Issuer, "ada@example.com", wrongPasswd), http.StatusUnauthorized, "first failure")
	wantStatus(t, b.tryLogin(s.Issuer, "ada@example.com", testPassword), http.StatusTooManyRequests, "at once again")

	evs := s.trail(t, storage.AuditFilter{AfterID: start[len(start)-1].ID})
	if len(evs) != 2 || evs[0].Details["reason"] != audit.ReasonBadPassword || evs[1].Details["reason"] != audit.ReasonThrottled {
		t.Fatalf("events %+v, want login.failed bad_password then throttled", evs)
	}
	e := evs[1]
	if e.Type != audit.LoginFailed || e.UserID != "" || e.Actor != "" || e.IP != "127.0.0.1" || e.Details["retry_after"] != float64(1) {
		t.Errorf("throttled sign-in: %+v", e)
	}
}

// TestAuditSessionLimitRefusal: a right password refused by the
// concurrent-session limit is a login.failed naming the account.
func TestAuditSessionLimitRefusal(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.MaxSessionsPerUser = 1; c.SessionLimitAction = "refuse" })
	ada := s.createUser(t, "ada@example.com", testPassword)
	wantSignedIn(t, newBrowser(t, s.Issuer).tryLogin(s.Issuer, "ada@example.com", testPassword), "first browser")
	wantStatus(t, newBrowser(t, s.Issuer).tryLogin(s.Issuer, "ada@example.com", testPassword), http.StatusConflict, "second browser")

	evs := s.trail(t, storage.AuditFilter{UserID: ada.ID})
	if len(evs) != 2 || evs[0].Type != audit.LoginSucceeded || evs[1].Type != audit.LoginFailed ||
		evs[1].Details["reason"] != audit.ReasonSessionLimit || evs[1].SessionID != "" {
		t.Fatalf("events %+v, want login.succeeded, then login.failed session_limit without a session", evs)
	}
}
