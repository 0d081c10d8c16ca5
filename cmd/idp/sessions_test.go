package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
)

func TestSessionsListRevokeStats(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ada := createUser(t, b.args, "ada@example.com")
			bob := createUser(t, b.args, "bob@example.com")
			signIn(t, b.store, ada.ID, "s1", "g1", false)
			signIn(t, b.store, ada.ID, "s2", "g2", true)
			signIn(t, b.store, bob.ID, "s3", "g3", false)

			list := func(args ...string) []sessionJSON {
				t.Helper()
				r := idp(t, "", nil, append(append([]string{"sessions", "list", "--json"}, args...), b.args...)...)
				if r.code != 0 {
					t.Fatalf("sessions list: exit %d: %s", r.code, r.stderr)
				}
				var out []sessionJSON
				if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
					t.Fatalf("sessions list printed %q: %v", r.stdout, err)
				}
				if strings.Contains(r.stdout, "secret") {
					t.Errorf("sessions list shows a secret: %s", r.stdout)
				}
				return out
			}
			sids := func(l []sessionJSON) string {
				var ids []string
				for _, s := range l {
					ids = append(ids, s.SID+"/"+s.Email)
				}
				return strings.Join(ids, " ")
			}
			all := list()
			if got := sids(all); !strings.Contains(got, "s1/ada@example.com") || !strings.Contains(got, "s2/ada@example.com") ||
				!strings.Contains(got, "s3/bob@example.com") || len(all) != 3 {
				t.Errorf("sessions list = %s; want s1, s2 (ada) and s3 (bob)", got)
			}
			if got := list("--user", bob.ID); len(got) != 1 || got[0].SID != "s3" {
				t.Errorf("sessions list --user bob = %s", sids(got))
			}
			table := idp(t, "", nil, append([]string{"sessions", "list"}, b.args...)...)
			if !strings.Contains(table.stdout, "SID") || !strings.Contains(table.stdout, "s3") || !strings.Contains(table.stdout, "bob@example.com") ||
				!strings.Contains(table.stdout, "Unknown browser") {
				t.Errorf("sessions list (table) = %q", table.stdout)
			}

			stats := idp(t, "", nil, append([]string{"sessions", "stats", "--json"}, b.args...)...)
			var a activityJSON
			if err := json.Unmarshal([]byte(stats.stdout), &a); err != nil {
				t.Fatalf("sessions stats printed %q: %v", stats.stdout, err)
			}
			want := activityJSON{Minutes: 15, Sessions: 3, Users: 2, PerClient: []clientActivityJSON{{ClientID: "c1", ClientName: "App", Sessions: 3, Users: 2}}}
			if d := cmpJSON(a, want); d != "" {
				t.Errorf("sessions stats = %s", d)
			}
			text := idp(t, "", nil, append([]string{"sessions", "stats", "--minutes", "5"}, b.args...)...)
			if !strings.HasPrefix(text.stdout, "active in the last 5 minutes: 3 sessions, 2 users\n") || !strings.Contains(text.stdout, "c1") {
				t.Errorf("sessions stats (text) = %q", text.stdout)
			}

			// Forced logout of one session: it and its bound grant end;
			// the offline grant made in s2 and bob's session live on.
			r := idp(t, "", nil, append([]string{"sessions", "revoke", "--session", "s1"}, b.args...)...)
			wantOut := "ended session s1 (user " + ada.ID + "): its refresh tokens and session-bound grants are revoked" + jwtCaveat
			if r.code != 0 || r.stdout != wantOut {
				t.Fatalf("sessions revoke --session: exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, wantOut, r.stderr)
			}
			wantEnded(t, b.store, map[string]bool{"s1": true, "s2": false, "s3": false}, map[string]bool{"g1": true, "g2": false, "g3": false})
			if got := list(); len(got) != 2 {
				t.Errorf("after revoking s1, sessions list = %s", sids(got))
			}
			again := idp(t, "", nil, append([]string{"sessions", "revoke", "--session", "s1"}, b.args...)...)
			if again.code != 0 || !strings.HasPrefix(again.stdout, "session s1 had already ended at ") {
				t.Errorf("revoking s1 again: exit %d stdout %q", again.code, again.stdout)
			}

			r = idp(t, "", nil, append([]string{"sessions", "revoke", "--user", ada.ID}, b.args...)...)
			wantOut = "ended 1 session of user " + ada.ID + ": their refresh tokens and session-bound grants are revoked" + jwtCaveat
			if r.code != 0 || r.stdout != wantOut {
				t.Fatalf("sessions revoke --user: exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, wantOut, r.stderr)
			}
			wantEnded(t, b.store, map[string]bool{"s2": true, "s3": false}, map[string]bool{"g2": false, "g3": false})
			if got := list(); len(got) != 1 || got[0].SID != "s3" {
				t.Errorf("after revoking ada, sessions list = %s", sids(got))
			}
			if got := list("--user", ada.ID); len(got) != 0 {
				t.Errorf("ada's sessions after revoke = %s", sids(got))
			}
			// Each forced logout is in the audit trail once, by the admin
			// (revoking the ended s1 again added nothing).
			evs, err := b.store.ListAuditEvents(t.Context(), storage.AuditFilter{Types: []string{audit.SessionRevoked}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				if e.Actor != audit.ActorAdmin || e.UserID != ada.ID || e.Details["by"] != audit.ActorAdmin {
					t.Errorf("audit event %+v", e)
				}
				got = append(got, e.SessionID)
			}
			if strings.Join(got, ",") != "s1,s2" {
				t.Errorf("session.revoked events for %v, want s1,s2", got)
			}
		})
	}
}

func TestSessionsListHidesIdleSessions(t *testing.T) {
	dir := t.TempDir()
	sel := []string{"--data-dir", dir}
	ada := createUser(t, sel, "ada@example.com")
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	signIn(t, st, ada.ID, "s1", "g1", false)
	if got := idp(t, "", nil, append([]string{"sessions", "list", "--json"}, sel...)...); !strings.Contains(got.stdout, `"s1"`) {
		t.Fatalf("fresh session not listed: %s", got.stdout)
	}
	// The session was last seen now; with a 1ns idle timeout it has timed out.
	got := idp(t, "", map[string]string{"IDP_SESSION_IDLE_TIMEOUT": "1ns"}, append([]string{"sessions", "list", "--json"}, sel...)...)
	if got.code != 0 || strings.TrimSpace(got.stdout) != "[]" {
		t.Errorf("idle session listed: exit %d %q %s", got.code, got.stdout, got.stderr)
	}
}

func TestSessionsRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	sel := []string{"--data-dir", dir}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no subcommand", []string{}, 2, "expected one of: list, revoke, stats"},
		{"unknown subcommand", []string{"kill"}, 2, `unknown subcommand "kill"`},
		{"revoke without target", []string{"revoke"}, 2, "exactly one of --session SID or --user USER_ID"},
		{"revoke with both", []string{"revoke", "--session", "s", "--user", "u"}, 2, "exactly one of"},
		{"revoke unknown session", []string{"revoke", "--session", "nope"}, 1, "no session with id nope"},
		{"revoke unknown user", []string{"revoke", "--user", "nobody"}, 1, "no user with id nobody"},
		{"list unknown user", []string{"list", "--user", "nobody"}, 1, "no user with id nobody"},
		{"list argument", []string{"list", "everyone"}, 2, `unexpected argument "everyone"`},
		{"stats zero minutes", []string{"stats", "--minutes", "0"}, 2, "--minutes must be between"},
		{"stats bad minutes", []string{"stats", "--minutes", "x"}, 2, "invalid value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := idp(t, "", nil, append(append([]string{"sessions"}, tt.args...), sel...)...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d stderr %q; want exit %d and %q", r.code, r.stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func cmpJSON(got, want any) string {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) == string(w) {
		return ""
	}
	return "got " + string(g) + "\nwant " + string(w)
}
