package main

import (
	"crypto/sha256"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
	"github.com/gatehouse-idp/gatehouse/internal/storage/postgres"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlite"
	"github.com/gatehouse-idp/gatehouse/internal/throttle"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// cliBackend is a fresh database as the CLI selects it, and a store handle
// on the same database for the test to set up and check what the CLI did.
type cliBackend struct {
	name  string
	args  []string
	store storage.Store
}

func cliBackends(t *testing.T) []cliBackend {
	t.Helper()
	dir := t.TempDir()
	lite, err := sqlite.Open(t.Context(), filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	if err := lite.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDatabaseURL(t)
	pg, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return []cliBackend{
		{"sqlite", []string{"--data-dir", dir}, lite},
		{"postgres", []string{"--database-url", url}, pg},
	}
}

// signIn records what signing in to client c1 leaves behind for the
// user: a login session and a grant made in it (offline: surviving the
// session's end), as the server would.
func signIn(t *testing.T, st storage.Store, userID, sessionID, grantID string, offline bool) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := st.GetClient(ctx, "c1"); err != nil {
		if err := st.CreateClient(ctx, storage.Client{ID: "c1", Metadata: storage.ClientMetadata{ClientName: "App"}, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateSession(ctx, storage.Session{ID: sessionID, SecretHash: sum(sessionID), UserID: userID, AuthTime: now,
		AMR: []string{"pwd"}, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	code := storage.AuthCode{CodeHash: sum("code " + grantID), ClientID: "c1", UserID: userID, SessionID: sessionID,
		GrantID: grantID, RedirectURI: "https://app.example/cb", Scopes: []string{"openid"}, AuthTime: now,
		CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := st.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	g := storage.Grant{ID: grantID, UserID: userID, ClientID: "c1", SessionID: sessionID, Offline: offline, Scopes: []string{"openid"}, CreatedAt: now}
	if _, err := st.RedeemAuthCode(ctx, code.CodeHash, now, g, storage.IssuedTokens{}); err != nil {
		t.Fatal(err)
	}
}

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// wantEnded checks which sessions have ended and which grants are revoked.
func wantEnded(t *testing.T, st storage.Store, ended map[string]bool, revoked map[string]bool) {
	t.Helper()
	for id, want := range ended {
		s, err := st.GetSession(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.EndedAt != nil; got != want {
			t.Errorf("session %s ended: %t, want %t", id, got, want)
		}
	}
	for id, want := range revoked {
		g, err := st.GetGrant(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.RevokedAt != nil; got != want {
			t.Errorf("grant %s revoked: %t, want %t", id, got, want)
		}
	}
}

func createUser(t *testing.T, sel []string, email string, extra ...string) userJSON {
	t.Helper()
	args := append([]string{"users", "create", "--email", email, "--password-stdin"}, extra...)
	r := idp(t, "a long enough password\n", nil, append(args, sel...)...)
	if r.code != 0 {
		t.Fatalf("users create: exit %d: %s", r.code, r.stderr)
	}
	var u userJSON
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil {
		t.Fatalf("users create printed %q: %v", r.stdout, err)
	}
	return u
}

const jwtCaveat = "; JWT access tokens already issued stay valid until they expire (at most the access token lifetime)\n"

func TestUsersDisableEnableSetPassword(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ada := createUser(t, b.args, "ada@example.com", "--email-verified")
			bob := createUser(t, b.args, "bob@example.com")
			if !ada.EmailVerified || bob.EmailVerified {
				t.Errorf("email_verified: ada %t (--email-verified), bob %t (without); want true, false", ada.EmailVerified, bob.EmailVerified)
			}
			if u, err := b.store.GetUser(t.Context(), ada.ID); err != nil || !u.EmailVerified {
				t.Errorf("stored ada: EmailVerified %t, %v; want true", u.EmailVerified, err)
			}
			signIn(t, b.store, ada.ID, "s1", "g1", false)
			signIn(t, b.store, ada.ID, "s2", "g2", true)
			signIn(t, b.store, bob.ID, "s3", "g3", false)

			steps := []struct {
				name       string
				stdin      string
				args       []string
				wantOut    string
				wantStatus string // in users list
				ended      map[string]bool
				revoked    map[string]bool
			}{
				{"disable", "", []string{"disable", ada.ID},
					"disabled user " + ada.ID + ": ended 2 sessions, revoked 2 grants" + jwtCaveat, "disabled",
					map[string]bool{"s1": true, "s2": true, "s3": false}, map[string]bool{"g1": true, "g2": true, "g3": false}},
				{"disable again", "", []string{"disable", ada.ID},
					"disabled user " + ada.ID + ": ended 0 sessions, revoked 0 grants" + jwtCaveat, "disabled", nil, nil},
				{"enable", "", []string{"enable", ada.ID},
					"enabled user " + ada.ID + "; sessions and grants ended earlier stay ended\n", "active",
					map[string]bool{"s1": true, "s2": true, "s3": false}, map[string]bool{"g1": true, "g2": true, "g3": false}},
				{"set-password", "a brand new password\n", []string{"set-password", ada.ID, "--password-stdin"},
					"set the password of user " + ada.ID + ": ended 1 session, revoked 1 grant" + jwtCaveat, "active",
					map[string]bool{"s4": true, "s3": false}, map[string]bool{"g4": true, "g3": false}},
			}
			for _, st := range steps {
				if st.name == "set-password" {
					signIn(t, b.store, ada.ID, "s4", "g4", true) // she signed in again
				}
				r := idp(t, st.stdin, nil, append(append([]string{"users"}, st.args...), b.args...)...)
				if r.code != 0 || r.stdout != st.wantOut {
					t.Fatalf("%s: exit %d\nstdout %q\nwant   %q\nstderr %s", st.name, r.code, r.stdout, st.wantOut, r.stderr)
				}
				wantEnded(t, b.store, st.ended, st.revoked)
				u, err := b.store.GetUser(t.Context(), ada.ID)
				if err != nil {
					t.Fatal(err)
				}
				if u.Disabled != (st.wantStatus == "disabled") {
					t.Errorf("%s: stored Disabled = %t", st.name, u.Disabled)
				}
				list := idp(t, "", nil, append([]string{"users", "list", "--json"}, b.args...)...)
				var all []userJSON
				if err := json.Unmarshal([]byte(list.stdout), &all); err != nil || len(all) != 2 {
					t.Fatalf("%s: users list --json = %q, %v", st.name, list.stdout, err)
				}
				if all[0].ID != ada.ID || all[0].Disabled != (st.wantStatus == "disabled") || all[1].Disabled {
					t.Errorf("%s: users list = %+v; want ada %s, bob active", st.name, all, st.wantStatus)
				}
			}

			u, err := b.store.GetUser(t.Context(), ada.ID)
			if err != nil {
				t.Fatal(err)
			}
			for pw, want := range map[string]bool{"a brand new password": true, "a long enough password": false} {
				if ok, err := users.VerifyPassword(u.PasswordHash, pw); ok != want || err != nil {
					t.Errorf("VerifyPassword(%q) = %t, %v; want %t", pw, ok, err, want)
				}
			}
			if got, err := b.store.GetUser(t.Context(), bob.ID); err != nil || got.Disabled {
				t.Errorf("bob: disabled %t, %v; want untouched", got.Disabled, err)
			}
		})
	}
}

func TestUsersUnlock(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Now()
			// Locked: ten failures for ada (no account needed), and some
			// for bob and for an address, which unlocking ada leaves alone.
			keys := []string{throttle.AccountKey("ada@example.com"), throttle.AccountKey("bob@example.com"), throttle.IPKey("192.0.2.1")}
			for range 10 {
				if _, err := b.store.RecordLoginFailure(ctx, keys, now, 15*time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			r := idp(t, "", nil, append([]string{"users", "unlock", " Ada@Example.com"}, b.args...)...)
			if want := "cleared the failed sign-ins of ada@example.com"; r.code != 0 || !strings.HasPrefix(r.stdout, want) {
				t.Fatalf("exit %d stdout %q stderr %q; want exit 0 and %q", r.code, r.stdout, r.stderr, want)
			}
			got, err := b.store.GetLoginThrottles(ctx, keys, now)
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Failures != 0 || got[1].Failures != 10 || got[2].Failures != 10 {
				t.Errorf("failures after unlocking ada: ada %d, bob %d, address %d; want 0, 10, 10", got[0].Failures, got[1].Failures, got[2].Failures)
			}
			// Unlocking what is not locked is not an error.
			if r := idp(t, "", nil, append([]string{"users", "unlock", "nobody@example.com"}, b.args...)...); r.code != 0 {
				t.Errorf("unlock of an email without failures: exit %d stderr %q", r.code, r.stderr)
			}
		})
	}
}

func TestUsersUnknownID(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			const id = "00000000-0000-4000-8000-000000000000"
			for _, args := range [][]string{
				{"disable", id},
				{"enable", id},
				{"set-password", id, "--password-stdin"},
			} {
				r := idp(t, "a long enough password\n", nil, append(append([]string{"users"}, args...), b.args...)...)
				if want := "idp users: no user with id " + id + "\n"; r.code != 1 || r.stderr != want || r.stdout != "" {
					t.Errorf("users %s: exit %d stdout %q stderr %q; want exit 1 and %q", args[0], r.code, r.stdout, r.stderr, want)
				}
			}
		})
	}
}

func TestUsersAdminCommandsRefuseBadInput(t *testing.T) {
	dir := t.TempDir()
	sel := []string{"--data-dir", dir}
	ada := createUser(t, sel, "ada@example.com")
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"disable without id", "", []string{"disable"}, "usage: idp users disable USER_ID"},
		{"disable two ids", "", []string{"disable", ada.ID, ada.ID}, "usage: idp users disable USER_ID"},
		{"enable without id", "", []string{"enable"}, "usage: idp users enable USER_ID"},
		{"set-password without id", "long enough password\n", []string{"set-password", "--password-stdin"}, "usage: idp users set-password USER_ID"},
		{"set-password without --password-stdin", "long enough password\n", []string{"set-password", ada.ID}, "--password-stdin is required"},
		{"set-password with empty stdin", "", []string{"set-password", ada.ID, "--password-stdin"}, "no password on standard input"},
		{"set-password too short", "short\n", []string{"set-password", ada.ID, "--password-stdin"}, "--password: must be at least 8 characters"},
		{"set-password unknown flag", "", []string{"set-password", ada.ID, "--password", "x"}, "flag provided but not defined: -password"},
		{"list with an argument", "", []string{"list", "everyone"}, `unexpected argument "everyone"`},
		{"unknown subcommand", "", []string{"delete", ada.ID}, `unknown subcommand "delete"; expected one of: create, list, disable, enable, set-password, unlock`},
		{"unlock without email", "", []string{"unlock"}, "usage: idp users unlock EMAIL"},
		{"unlock two emails", "", []string{"unlock", "a@example.com", "b@example.com"}, "usage: idp users unlock EMAIL"},
	}
	before := idp(t, "", nil, append([]string{"users", "list", "--json"}, sel...)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := idp(t, tt.stdin, nil, append(append([]string{"users"}, tt.args...), sel...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("exit %d stderr %q; want exit 2 and %q", r.code, r.stderr, tt.wantErr)
			}
		})
	}
	// Nothing changed: not the password, not the status.
	after := idp(t, "", nil, append([]string{"users", "list", "--json"}, sel...)...)
	if after.stdout != before.stdout {
		t.Errorf("refused commands changed users:\n%s\nwas\n%s", after.stdout, before.stdout)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.GetUser(t.Context(), ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := users.VerifyPassword(u.PasswordHash, "a long enough password"); !ok || err != nil {
		t.Errorf("the original password no longer verifies: %t, %v", ok, err)
	}
}
