package users_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// clock is a settable clock for the Service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// world is a user signed in to a client several ways, and a bystander who
// must be left alone.
type world struct {
	store storage.Store
	svc   *users.Service
	clock *clock
	logs  *bytes.Buffer

	ada, bob storage.User
	// Ada's live sessions, her session ended before the test, and Bob's.
	adaLive       []string
	adaEnded      string
	adaEndedAt    time.Time
	bobSession    string
	adaLiveGrants []string // bound to live sessions, and one offline
	adaRevoked    string   // revoked before the test
	adaRevokedAt  time.Time
	bobGrant      string
	// adaRefresh is the refresh token of Ada's offline grant.
	adaRefresh storage.RefreshToken
}

const adaPassword = "analytical engine"

// newWorld creates, at epoch, Ada with two live sessions, one ended
// session, grants bound to each live session, one offline grant with a
// refresh token and one revoked grant; and Bob with a session and a grant.
// Operations then run at epoch plus an hour.
func newWorld(t *testing.T, open opener) *world {
	t.Helper()
	ctx := t.Context()
	w := &world{store: open(t), clock: &clock{t: epoch}, logs: new(bytes.Buffer)}
	w.svc = users.New(w.store, users.Options{
		Now:    w.clock.Now,
		Rand:   seeded(9),
		Logger: slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Params: cheap,
	})
	var err error
	if w.ada, err = w.svc.Create(ctx, users.CreateUser{Email: "ada@example.com", Password: adaPassword}); err != nil {
		t.Fatal(err)
	}
	if w.bob, err = w.svc.Create(ctx, users.CreateUser{Email: "bob@example.com", Password: "bob's password"}); err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateClient(ctx, storage.Client{ID: "c1", Metadata: storage.ClientMetadata{ClientName: "App"}, CreatedAt: epoch, UpdatedAt: epoch}); err != nil {
		t.Fatal(err)
	}
	session := func(id, userID string) string {
		t.Helper()
		s := storage.Session{ID: id, SecretHash: sum(id), UserID: userID, AuthTime: epoch, AMR: []string{"pwd"},
			CreatedAt: epoch, LastSeenAt: epoch, ExpiresAt: epoch.Add(7 * 24 * time.Hour)}
		if err := w.store.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		return id
	}
	grant := func(id, userID, sessionID string, offline bool, rt *storage.RefreshToken) string {
		t.Helper()
		code := storage.AuthCode{CodeHash: sum("code " + id), ClientID: "c1", UserID: userID, SessionID: sessionID,
			GrantID: id, RedirectURI: "https://app.example/cb", Scopes: []string{"openid"}, AuthTime: epoch,
			CreatedAt: epoch, ExpiresAt: epoch.Add(time.Minute)}
		if err := w.store.CreateAuthCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		g := storage.Grant{ID: id, UserID: userID, ClientID: "c1", SessionID: sessionID, Offline: offline,
			Scopes: []string{"openid"}, CreatedAt: epoch}
		if _, err := w.store.RedeemAuthCode(ctx, code.CodeHash, epoch, g, storage.IssuedTokens{RefreshToken: rt}); err != nil {
			t.Fatal(err)
		}
		return id
	}

	w.adaLive = []string{session("s1", w.ada.ID), session("s2", w.ada.ID)}
	w.adaEnded = session("s3", w.ada.ID)
	w.adaEndedAt = epoch.Add(time.Minute).Truncate(time.Microsecond)
	if err := w.store.EndSession(ctx, w.adaEnded, w.adaEndedAt); err != nil {
		t.Fatal(err)
	}
	w.bobSession = session("s4", w.bob.ID)

	w.adaRefresh = storage.RefreshToken{TokenHash: sum("rt"), GrantID: "g-offline", ClientID: "c1", UserID: w.ada.ID,
		Scopes: []string{"openid"}, CreatedAt: epoch, ExpiresAt: epoch.Add(48 * time.Hour), AbsoluteExpiresAt: epoch.Add(90 * 24 * time.Hour)}
	w.adaLiveGrants = []string{
		grant("g-s1", w.ada.ID, "s1", false, nil),
		grant("g-s2", w.ada.ID, "s2", false, nil),
		grant("g-offline", w.ada.ID, "s1", true, &w.adaRefresh),
	}
	w.adaRevoked = grant("g-revoked", w.ada.ID, "s2", false, nil)
	w.adaRevokedAt = epoch.Add(2 * time.Minute).Truncate(time.Microsecond)
	if err := w.store.RevokeGrant(ctx, w.adaRevoked, w.adaRevokedAt); err != nil {
		t.Fatal(err)
	}
	w.bobGrant = grant("g-bob", w.bob.ID, "s4", true, nil)

	w.clock.Set(later)
	return w
}

// later is when the operations under test run.
var later = epoch.Add(time.Hour)

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// checkSessions fails unless the sessions ended exactly at endedAt (nil:
// not ended).
func (w *world) checkSessions(t *testing.T, endedAt *time.Time, ids ...string) {
	t.Helper()
	for _, id := range ids {
		s, err := w.store.GetSession(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case endedAt == nil && s.EndedAt != nil:
			t.Errorf("session %s ended at %v, want it live", id, s.EndedAt)
		case endedAt != nil && (s.EndedAt == nil || !s.EndedAt.Equal(*endedAt)):
			t.Errorf("session %s EndedAt = %v, want %v", id, s.EndedAt, *endedAt)
		}
	}
}

// checkGrants fails unless the grants were revoked exactly at revokedAt
// (nil: not revoked).
func (w *world) checkGrants(t *testing.T, revokedAt *time.Time, ids ...string) {
	t.Helper()
	for _, id := range ids {
		g, err := w.store.GetGrant(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case revokedAt == nil && g.RevokedAt != nil:
			t.Errorf("grant %s revoked at %v, want it live", id, g.RevokedAt)
		case revokedAt != nil && (g.RevokedAt == nil || !g.RevokedAt.Equal(*revokedAt)):
			t.Errorf("grant %s RevokedAt = %v, want %v", id, g.RevokedAt, *revokedAt)
		}
	}
}

// checkEverythingEnded checks Ada's sessions and grants after a Disable or
// SetPassword at later, and that Bob's and the earlier ones were left as
// they were.
func (w *world) checkEverythingEnded(t *testing.T) {
	t.Helper()
	now := later.Truncate(time.Microsecond)
	w.checkSessions(t, &now, w.adaLive...)
	w.checkSessions(t, &w.adaEndedAt, w.adaEnded)
	w.checkSessions(t, nil, w.bobSession)
	w.checkGrants(t, &now, w.adaLiveGrants...)
	w.checkGrants(t, &w.adaRevokedAt, w.adaRevoked)
	w.checkGrants(t, nil, w.bobGrant)
	// The offline grant's refresh token no longer refreshes.
	next := w.adaRefresh
	next.TokenHash, next.CreatedAt = sum("rt2"), later
	if err := w.store.RotateRefreshToken(t.Context(), w.adaRefresh.TokenHash, later, next, nil); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("RotateRefreshToken of the offline grant's token = %v, want ErrRevoked", err)
	}
}

func (w *world) user(t *testing.T, id string) storage.User {
	t.Helper()
	u, err := w.store.GetUser(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestDisableAndEnable(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		w := newWorld(t, open)
		ctx := t.Context()

		ended, err := w.svc.Disable(ctx, w.ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Two live sessions; g-s1, g-s2 and g-offline (not g-revoked, not
		// Bob's).
		if want := (users.Ended{Sessions: 2, Grants: 3}); ended != want {
			t.Errorf("Disable = %+v, want %+v", ended, want)
		}
		want := w.ada
		want.Disabled = true
		want.UpdatedAt = later.Truncate(time.Microsecond)
		if got := w.user(t, w.ada.ID); got != want {
			t.Errorf("stored user = %+v\nwant %+v", got, want)
		}
		if got := w.user(t, w.bob.ID); got != w.bob {
			t.Errorf("Bob changed: %+v", got)
		}
		w.checkEverythingEnded(t)
		if _, err := w.svc.Authenticate(ctx, "ada@example.com", adaPassword); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("Authenticate a disabled user = %v, want ErrInvalidCredentials", err)
		}
		logs := w.logs.String()
		for _, s := range []string{"user disabled", "user_id=" + w.ada.ID, "sessions_ended=2", "grants_revoked=3"} {
			if !strings.Contains(logs, s) {
				t.Errorf("log lacks %q:\n%s", s, logs)
			}
		}

		// Again: nothing left to end, and not an error.
		w.clock.Set(later.Add(time.Minute))
		if ended, err := w.svc.Disable(ctx, w.ada.ID); err != nil || ended != (users.Ended{}) {
			t.Errorf("second Disable = %+v, %v; want nothing ended, no error", ended, err)
		}

		w.clock.Set(later.Add(2 * time.Minute))
		if err := w.svc.Enable(ctx, w.ada.ID); err != nil {
			t.Fatal(err)
		}
		want.Disabled = false
		want.UpdatedAt = later.Add(2 * time.Minute).Truncate(time.Microsecond)
		if got := w.user(t, w.ada.ID); got != want {
			t.Errorf("stored user after Enable = %+v\nwant %+v", got, want)
		}
		if u, err := w.svc.Authenticate(ctx, "ada@example.com", adaPassword); err != nil || u.ID != w.ada.ID {
			t.Errorf("Authenticate after Enable = %q, %v", u.ID, err)
		}
		// Enabling brings nothing back.
		w.checkEverythingEnded(t)
		if !strings.Contains(w.logs.String(), "user enabled") {
			t.Errorf("log lacks the enable:\n%s", w.logs)
		}
	})
}

func TestSetPassword(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		w := newWorld(t, open)
		ctx := t.Context()
		const newPassword = "difference engine"

		ended, err := w.svc.SetPassword(ctx, w.ada.ID, newPassword)
		if err != nil {
			t.Fatal(err)
		}
		if want := (users.Ended{Sessions: 2, Grants: 3}); ended != want {
			t.Errorf("SetPassword = %+v, want %+v", ended, want)
		}
		got := w.user(t, w.ada.ID)
		if got.PasswordHash == w.ada.PasswordHash || !strings.HasPrefix(got.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Errorf("PasswordHash = %q, want a new argon2id hash with the service's parameters", got.PasswordHash)
		}
		want := w.ada
		want.PasswordHash = got.PasswordHash
		want.UpdatedAt = later.Truncate(time.Microsecond)
		if got != want {
			t.Errorf("stored user = %+v\nwant %+v", got, want)
		}
		w.checkEverythingEnded(t)
		if u, err := w.svc.Authenticate(ctx, "ada@example.com", newPassword); err != nil || u.ID != w.ada.ID {
			t.Errorf("Authenticate with the new password = %q, %v", u.ID, err)
		}
		if _, err := w.svc.Authenticate(ctx, "ada@example.com", adaPassword); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("Authenticate with the old password = %v, want ErrInvalidCredentials", err)
		}
		logs := w.logs.String()
		if !strings.Contains(logs, "user password set") || !strings.Contains(logs, "sessions_ended=2") {
			t.Errorf("log lacks the password change:\n%s", logs)
		}
		for _, secret := range []string{newPassword, adaPassword, "$argon2id"} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains %q", secret)
			}
		}
	})
}

func TestSetPasswordKeepsDisabledUserDisabled(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		w := newWorld(t, open)
		ctx := t.Context()
		if _, err := w.svc.Disable(ctx, w.ada.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.SetPassword(ctx, w.ada.ID, "difference engine"); err != nil {
			t.Fatal(err)
		}
		if !w.user(t, w.ada.ID).Disabled {
			t.Error("SetPassword enabled a disabled user")
		}
		if _, err := w.svc.Authenticate(ctx, "ada@example.com", "difference engine"); !errors.Is(err, users.ErrInvalidCredentials) {
			t.Errorf("Authenticate = %v, want ErrInvalidCredentials: still disabled", err)
		}
	})
}

func TestSetPasswordValidation(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		w := newWorld(t, open)
		tests := []struct{ name, password string }{
			{"empty", ""},
			{"7 characters", "hunter2"},
			{"7 characters in 14 bytes", strings.Repeat("é", 7)},
			{"1025 bytes", strings.Repeat("x", 1025)},
			{"invalid UTF-8", "password\xff"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ended, err := w.svc.SetPassword(t.Context(), w.ada.ID, tt.password)
				var ve *users.ValidationError
				if !errors.As(err, &ve) || ve.Field != "password" {
					t.Fatalf("SetPassword error = %v, want a *ValidationError for password", err)
				}
				if tt.password != "" && strings.Contains(err.Error(), tt.password) {
					t.Errorf("error %q contains the password", err)
				}
				if ended != (users.Ended{}) {
					t.Errorf("SetPassword ended %+v on invalid input", ended)
				}
				if got := w.user(t, w.ada.ID); got != w.ada {
					t.Errorf("invalid input changed the user: %+v", got)
				}
				w.checkSessions(t, nil, w.adaLive...)
				w.checkGrants(t, nil, w.adaLiveGrants...)
			})
		}
	})
}

func TestUnknownUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		w := newWorld(t, open)
		const id = "00000000-0000-4000-8000-000000000000"
		tests := []struct {
			name string
			call func() (users.Ended, error)
		}{
			{"Disable", func() (users.Ended, error) { return w.svc.Disable(t.Context(), id) }},
			{"Enable", func() (users.Ended, error) { return users.Ended{}, w.svc.Enable(t.Context(), id) }},
			{"SetPassword", func() (users.Ended, error) { return w.svc.SetPassword(t.Context(), id, "long enough") }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ended, err := tt.call()
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("%s(unknown) error = %v, want ErrNotFound", tt.name, err)
				}
				if !strings.Contains(err.Error(), id) {
					t.Errorf("error %q does not name the id", err)
				}
				if ended != (users.Ended{}) {
					t.Errorf("%s(unknown) ended %+v", tt.name, ended)
				}
				w.checkSessions(t, nil, append(w.adaLive, w.bobSession)...)
				w.checkGrants(t, nil, append(w.adaLiveGrants, w.bobGrant)...)
			})
		}
	})
}

func TestDisableStorageFailure(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		w := newWorld(t, open)
		w.store.Close()
		for name, call := range map[string]func() error{
			"Disable":     func() error { _, err := w.svc.Disable(t.Context(), w.ada.ID); return err },
			"Enable":      func() error { return w.svc.Enable(t.Context(), w.ada.ID) },
			"SetPassword": func() error { _, err := w.svc.SetPassword(t.Context(), w.ada.ID, "long enough"); return err },
		} {
			if err := call(); err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s on a closed store = %v, want a storage failure", name, err)
			}
		}
	})
}

func TestCreateEmailVerified(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		f := newFixture(t, open)
		for i, verified := range []bool{false, true} {
			u, err := f.svc.Create(t.Context(), users.CreateUser{
				Email: []string{"a@example.com", "b@example.com"}[i], Password: "password1", EmailVerified: verified,
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.svc.Get(t.Context(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if u.EmailVerified != verified || got.EmailVerified != verified {
				t.Errorf("EmailVerified: returned %t, stored %t; want %t", u.EmailVerified, got.EmailVerified, verified)
			}
		}
	})
}
