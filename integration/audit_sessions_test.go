package integration

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/server"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// TestAuditSessionEndings: every way a session ends leaves its row, under
// that session's sid and saying who ended it: eviction by the session
// limit, a new sign-in replacing the browser's session, "sign out" of
// another session and of this one on the account page, "revoke access"
// (consent revoked), and RP-initiated logout.
func TestAuditSessionEndings(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.MaxSessionsPerUser, c.SessionLimitAction = 2, "evict_oldest" })
	u := s.createUser(t, "ada@example.com", testPassword)
	a := s.newApp(t, "Ledger", refreshGrants)
	uid := audit.User(u.ID)
	sidOf := func(d device) string {
		t.Helper()
		return sessionItem(t, d.b.account(), "This device").fields.Get("sid")
	}

	// Three devices under a limit of two: the first is evicted.
	// The clock moves between devices, so "least recently active" is
	// well defined.
	first := s.signInDevice(t, a, u.Email, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
	sid1 := sidOf(first)
	s.Clock.Advance(time.Minute)
	second := s.signInDevice(t, a, u.Email, "Mozilla/5.0 (Windows NT 10.0) Chrome/130.0 Safari/537.36")
	sid2 := sidOf(second)
	s.Clock.Advance(time.Minute)
	third := s.signInDevice(t, a, u.Email, "Mozilla/5.0 (Macintosh) Version/17.0 Safari/605.1.15")
	sid3 := sidOf(third)
	first.b.wantSignedOut("the evicted device")

	// The second device signs in again in the same browser: its old
	// session is replaced.
	p, _ := second.b.open(s.Issuer + "/login")
	second.b.signIn(p, u.Email, testPassword)
	sid2b := sidOf(second)

	// From the third device: sign out the second, revoke Ledger, then sign
	// out this one.
	acc := third.b.account()
	if r := third.b.accountPost(acc, "/account/sessions/end", url.Values{"sid": {sid2b}}); r.Status != http.StatusSeeOther {
		t.Fatalf("sign out another session: %d", r.Status)
	}
	acc = third.b.account()
	if r := third.b.accountPost(acc, "/account/apps/revoke", url.Values{"client_id": {a.ID}}); r.Status != http.StatusSeeOther {
		t.Fatalf("revoke access: %d", r.Status)
	}
	acc = third.b.account()
	if r := third.b.accountPost(acc, "/account/sessions/end", url.Values{"sid": {sid3}}); r.Status != http.StatusSeeOther {
		t.Fatalf("sign out this session: %d", r.Status)
	}

	// A fourth device logs out through the app (RP-initiated, trusted).
	fourth := s.signInDevice(t, a, u.Email, "curl/8")
	sid4 := sidOf(fourth)
	hint := fourth.tok.Extra("id_token").(string)
	out := fourth.b.get(s.Issuer + "/logout?" + url.Values{"id_token_hint": {hint}}.Encode())
	if out.Status != http.StatusOK {
		t.Fatalf("RP-initiated logout: %d", out.Status)
	}

	types := []string{audit.SessionEvicted, audit.SessionRevoked, audit.ConsentRevoked, audit.Logout}
	got := s.trail(t, storage.AuditFilter{UserID: u.ID, Types: types})
	// The replaced session's row names no user: the browser's previous
	// session may have been anyone's. Fetch it by sid.
	replaced := s.trail(t, storage.AuditFilter{SessionID: sid2, Types: types})
	checkTrail(t, got, []wantEvent{
		{Type: audit.SessionEvicted, Actor: uid, UserID: u.ID, SessionID: sid1, IP: "127.0.0.1",
			Details: map[string]any{"limit": float64(2), "by_session": sid3}},
		{Type: audit.SessionRevoked, Actor: uid, UserID: u.ID, SessionID: sid2b, IP: "127.0.0.1",
			Details: map[string]any{"by": "user", "by_session": sid3}},
		{Type: audit.ConsentRevoked, Actor: uid, UserID: u.ID, ClientID: a.ID, SessionID: sid3, IP: "127.0.0.1"},
		{Type: audit.Logout, Actor: uid, UserID: u.ID, SessionID: sid3, IP: "127.0.0.1", Details: map[string]any{"via": "account"}},
		{Type: audit.Logout, Actor: uid, UserID: u.ID, ClientID: a.ID, SessionID: sid4, IP: "127.0.0.1",
			Details: map[string]any{"via": "end_session_endpoint", "confirmed": false}},
	})
	checkTrail(t, replaced, []wantEvent{
		{Type: audit.SessionRevoked, Actor: uid, SessionID: sid2, IP: "127.0.0.1",
			Details: map[string]any{"by": "new_sign_in", "by_session": sid2b}},
	})
}
