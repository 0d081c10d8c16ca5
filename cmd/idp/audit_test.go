package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// auditJSON runs "idp audit list --json" with args and returns the events.
func auditJSON(t *testing.T, sel []string, args ...string) []eventJSON {
	t.Helper()
	r := idp(t, "", nil, append(append([]string{"audit", "list", "--json"}, args...), sel...)...)
	if r.code != 0 {
		t.Fatalf("audit list %v: exit %d: %s", args, r.code, r.stderr)
	}
	var out []eventJSON
	for line := range strings.Lines(r.stdout) {
		var ev eventJSON
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit list --json line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

func eventTypes(evs []eventJSON) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// TestAdminChangesAreAudited: every change an operator makes with the CLI
// leaves one event, actor "admin", naming what changed; refused commands
// leave none.
func TestAdminChangesAreAudited(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			kek := newTestKEK(t)
			withKEK := map[string]string{"IDP_KEY_ENCRYPTION_KEY": kek.Encode()}
			seedKeys(t, b.store, kek)
			list := listKeysJSON(t, b.args)
			esActive, esNext := keyWith(t, list, "ES256", "active"), keyWith(t, list, "ES256", "next")

			ada := createUser(t, b.args, "ada@example.com")
			signIn(t, b.store, ada.ID, "s1", "g1", false) // a live session for disable to end
			steps := []struct {
				stdin string
				env   map[string]string
				args  []string
				code  int
			}{
				{"", nil, []string{"users", "disable", ada.ID}, 0},
				{"", nil, []string{"users", "disable", "nobody"}, 1}, // refused: no event
				{"", nil, []string{"users", "enable", ada.ID}, 0},
				{"another long password\n", nil, []string{"users", "set-password", "--password-stdin", ada.ID}, 0},
				{"short\n", nil, []string{"users", "set-password", "--password-stdin", ada.ID}, 2}, // refused
				{`{"client_name":"Audited","redirect_uris":["https://app.example/cb"]}`, nil, []string{"clients", "create"}, 0},
				{"", withKEK, []string{"keys", "rotate", "--alg", "ES256"}, 0},
			}
			var clientID string
			for _, s := range steps {
				r := idp(t, s.stdin, s.env, append(s.args, b.args...)...)
				if r.code != s.code {
					t.Fatalf("%v: exit %d, want %d: %s%s", s.args, r.code, s.code, r.stdout, r.stderr)
				}
				if s.args[0] == "clients" {
					var reg struct {
						ClientID string `json:"client_id"`
					}
					if err := json.Unmarshal([]byte(r.stdout), &reg); err != nil {
						t.Fatal(err)
					}
					clientID = reg.ClientID
				}
			}
			if r := idp(t, "", nil, append([]string{"clients", "delete", clientID}, b.args...)...); r.code != 0 {
				t.Fatalf("clients delete: %d %s", r.code, r.stderr)
			}

			got := auditJSON(t, b.args)
			want := []string{
				audit.UserCreated, audit.UserDisabled, audit.SessionRevoked, audit.UserEnabled, audit.UserPasswordSet,
				audit.ClientCreated,
				audit.KeyRotated, audit.KeyRetired, audit.KeyCreated,
				audit.ClientDeleted,
			}
			if !slices.Equal(eventTypes(got), want) {
				t.Fatalf("events %v, want %v", eventTypes(got), want)
			}
			for i, ev := range got {
				if ev.Actor != audit.ActorAdmin {
					t.Errorf("%s: actor %q, want admin", ev.Type, ev.Actor)
				}
				if i > 0 && ev.ID <= got[i-1].ID {
					t.Errorf("ids not increasing: %d after %d", ev.ID, got[i-1].ID)
				}
				switch {
				case strings.HasPrefix(ev.Type, "user."):
					if ev.UserID != ada.ID {
						t.Errorf("%s: user %q, want %s", ev.Type, ev.UserID, ada.ID)
					}
				case strings.HasPrefix(ev.Type, "client."):
					if ev.ClientID != clientID {
						t.Errorf("%s: client %q, want %s", ev.Type, ev.ClientID, clientID)
					}
				}
			}
			if d := got[1].Details; d["sessions_ended"] != float64(1) || d["grants_revoked"] != float64(1) {
				t.Errorf("user.disabled details %v", d)
			}
			// The session disable ended has its own event, under its sid.
			if e := got[2]; e.SessionID != "s1" || e.UserID != ada.ID || e.Details["by"] != audit.ActorAdmin || e.Details["reason"] != "user_disabled" {
				t.Errorf("session.revoked event %+v", e)
			}
			if d := got[5].Details; d["client_name"] != "Audited" {
				t.Errorf("client.created details %v", d)
			}
			for i, wantKID := range []string{esNext.KID, esActive.KID} {
				if d := got[6+i].Details; d["kid"] != wantKID || d["alg"] != "ES256" {
					t.Errorf("%s details %v, want kid %s, alg ES256", got[6+i].Type, d, wantKID)
				}
			}
			// Revoking the active RS256 key: the revocation, the next key
			// that signs instead, and its fresh successor.
			rsActive, rsNext := keyWith(t, list, "RS256", "active"), keyWith(t, list, "RS256", "next")
			if r := idp(t, "", withKEK, append([]string{"keys", "revoke", rsActive.KID}, b.args...)...); r.code != 0 {
				t.Fatalf("keys revoke: %d %s", r.code, r.stderr)
			}
			revoked := auditJSON(t, b.args, "--type", "key.revoked,key.rotated,key.created", "--after", fmt.Sprint(got[len(got)-1].ID))
			if ts := eventTypes(revoked); !slices.Equal(ts, []string{audit.KeyRevoked, audit.KeyRotated, audit.KeyCreated}) {
				t.Fatalf("keys revoke left %v", ts)
			}
			for i, kid := range []string{rsActive.KID, rsNext.KID} {
				if d := revoked[i].Details; d["kid"] != kid || d["alg"] != "RS256" || revoked[i].Actor != audit.ActorAdmin {
					t.Errorf("%s: %+v, want kid %s by admin", revoked[i].Type, revoked[i], kid)
				}
			}

			// Nothing secret reached the trail.
			raw := idp(t, "", nil, append([]string{"audit", "list", "--json"}, b.args...)...).stdout
			for _, secret := range []string{"another long password", "a long enough password", "argon2", "ada@example.com"} {
				if strings.Contains(raw, secret) {
					t.Errorf("the audit trail contains %q:\n%s", secret, raw)
				}
			}
		})
	}
}

// TestAuditList: the filters, both formats, paging, and bad input.
func TestAuditList(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			base := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
			at := func(h int) time.Time { return base.Add(time.Duration(h) * time.Hour) }
			ev := func(typ, sid, uid, cid string, when time.Time) storage.AuditEvent {
				return storage.AuditEvent{Type: typ, Actor: audit.User(uid), SessionID: sid, UserID: uid, ClientID: cid, IP: "192.0.2.1", Time: when,
					Details: map[string]any{"scope": "openid"}}
			}
			if err := b.store.AppendAuditEvents(t.Context(), []storage.AuditEvent{
				ev(audit.LoginSucceeded, "s1", "u1", "c1", at(0)),
				ev(audit.ConsentGranted, "s1", "u1", "c1", at(0)),
				ev(audit.TokenIssued, "s1", "u1", "c1", at(1)),
				ev(audit.LoginFailed, "", "u2", "", at(2)),
				ev(audit.TokenRefreshed, "s1", "u1", "c1", at(30)),
				ev(audit.Logout, "s1", "u1", "", at(40)),
				ev(audit.LoginSucceeded, "s2", "u2", "c2", at(41)),
			}); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				args []string
				want []string
			}{
				{"all", nil, []string{"login.succeeded", "consent.granted", "token.issued", "login.failed", "token.refreshed", "logout", "login.succeeded"}},
				{"a session's story", []string{"--session", "s1"}, []string{"login.succeeded", "consent.granted", "token.issued", "token.refreshed", "logout"}},
				{"user", []string{"--user", "u2"}, []string{"login.failed", "login.succeeded"}},
				{"client", []string{"--client", "c2"}, []string{"login.succeeded"}},
				{"types", []string{"--type", "logout, login.failed"}, []string{"login.failed", "logout"}},
				{"since RFC 3339", []string{"--since", at(30).Format(time.RFC3339)}, []string{"token.refreshed", "logout", "login.succeeded"}},
				{"since a duration ago", []string{"--since", "12h"}, []string{"logout", "login.succeeded"}},
				{"since days ago", []string{"--since", "1d", "--until", at(41).Format(time.RFC3339)}, []string{"token.refreshed", "logout"}},
				{"until", []string{"--until", at(1).Format(time.RFC3339)}, []string{"login.succeeded", "consent.granted"}},
				{"limit", []string{"--limit", "2"}, []string{"login.succeeded", "consent.granted"}},
				{"session and type", []string{"--session", "s1", "--type", "token.issued,token.refreshed"}, []string{"token.issued", "token.refreshed"}},
				{"nothing", []string{"--session", "nope"}, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if got := eventTypes(auditJSON(t, b.args, tc.args...)); !slices.Equal(got, tc.want) {
						t.Errorf("got %v, want %v", got, tc.want)
					}
				})
			}

			// Paging: the limit says how to go on, --after goes on.
			r := idp(t, "", nil, append([]string{"audit", "list", "--json", "--limit", "3"}, b.args...)...)
			first := auditJSON(t, b.args, "--limit", "3")
			if hint := fmt.Sprintf("--after %d", first[2].ID); r.code != 0 || !strings.Contains(r.stderr, hint) {
				t.Errorf("limit reached: stderr %q, want a hint with %q", r.stderr, hint)
			}
			rest := auditJSON(t, b.args, "--after", fmt.Sprint(first[2].ID))
			if len(rest) != 4 || rest[0].Type != audit.LoginFailed {
				t.Errorf("after %d: %v", first[2].ID, eventTypes(rest))
			}

			// The table: one line per event and a header, dashes for
			// empty fields, details as JSON.
			r = idp(t, "", nil, append([]string{"audit", "list", "--user", "u2"}, b.args...)...)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") ||
				!strings.Contains(lines[1], "login.failed") || !strings.Contains(lines[1], " - ") || !strings.Contains(lines[1], `{"scope":"openid"}`) {
				t.Errorf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}

			for _, bad := range [][]string{
				{"--type", "login.bogus"},
				{"--since", "yesterday"},
				{"--since", "-5h"},
				{"--until", "7x"},
				{"--limit", "-1"},
				{"extra"},
			} {
				if r := idp(t, "", nil, append(append([]string{"audit", "list"}, bad...), b.args...)...); r.code != 2 {
					t.Errorf("audit list %v: exit %d, want 2: %s", bad, r.code, r.stderr)
				}
			}
			if r := idp(t, "", nil, append([]string{"audit", "show"}, b.args...)...); r.code != 2 {
				t.Errorf("audit show: exit %d, want 2", r.code)
			}
		})
	}
}
