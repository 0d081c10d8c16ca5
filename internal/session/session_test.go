package session

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/sqlitetest"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func setup(t *testing.T, cfg Config) (*Manager, *fakeClock, storage.Store) {
	t.Helper()
	store := sqlitetest.NewStore(t)
	clk := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	now := clk.t
	if err := store.CreateUser(t.Context(), storage.User{ID: "u1", Email: "a@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	return NewManager(store, cfg, Options{Now: clk.Now}), clk, store
}

// start signs u1 in and returns the cookie the browser got.
func start(t *testing.T, m *Manager, prev *http.Cookie) (*http.Cookie, storage.Session) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://idp.example/login", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("User-Agent", "test-agent")
	if prev != nil {
		req.AddCookie(prev)
	}
	rec := httptest.NewRecorder()
	s, err := m.Start(t.Context(), rec, req, "u1", []string{"pwd"}, Limit{})
	if err != nil {
		t.Fatal(err)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("%d cookies set, want 1", len(cookies))
	}
	return cookies[0], s
}

func current(t *testing.T, m *Manager, c *http.Cookie) *Current {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "https://idp.example/", nil)
	if c != nil {
		req.AddCookie(c)
	}
	cur, err := m.Current(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

func TestCookieAttributes(t *testing.T) {
	tests := []struct {
		name     string
		secure   bool
		wantName string
	}{
		{"https issuer", true, "__Host-gatehouse_session"},
		{"http development issuer", false, "gatehouse_session"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := setup(t, Config{Secure: tt.secure})
			c, s := start(t, m, nil)
			if c.Name != tt.wantName || c.Secure != tt.secure {
				t.Errorf("cookie %s secure=%v, want %s secure=%v", c.Name, c.Secure, tt.wantName, tt.secure)
			}
			// __Host- requires Secure, Path=/ and no Domain; Lax keeps the
			// cookie on top-level navigations from apps (SSO) but off
			// cross-site subrequests.
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie attributes %+v", c)
			}
			if c.MaxAge != int((7 * 24 * time.Hour).Seconds()) {
				t.Errorf("Max-Age %d, want the absolute timeout", c.MaxAge)
			}
			if c.Value == s.ID {
				t.Error("the cookie carries the public session id")
			}
			if s.IP != "192.0.2.7" || s.UserAgent != "test-agent" || len(s.AMR) != 1 {
				t.Errorf("session metadata ip=%q ua=%q amr=%v", s.IP, s.UserAgent, s.AMR)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	m, clk, store := setup(t, Config{Secure: true})
	c, s := start(t, m, nil)

	if cur := current(t, m, c); cur == nil || cur.Session.ID != s.ID || cur.User.ID != "u1" {
		t.Fatalf("current = %+v", cur)
	}
	for name, bad := range map[string]*http.Cookie{
		"no cookie":      nil,
		"unknown secret": {Name: c.Name, Value: "not-a-session"},
		"oversized":      {Name: c.Name, Value: string(make([]byte, 200))},
		"other name":     {Name: "gatehouse_session", Value: c.Value},
	} {
		if cur := current(t, m, bad); cur != nil {
			t.Errorf("%s: got a session", name)
		}
	}

	// Touching is throttled: last seen moves only after the interval.
	clk.t = clk.t.Add(30 * time.Second)
	current(t, m, c)
	if got, _ := store.GetSession(t.Context(), s.ID); !got.LastSeenAt.Equal(s.LastSeenAt) {
		t.Errorf("last seen written after 30 s: %v", got.LastSeenAt)
	}
	clk.t = clk.t.Add(31 * time.Second)
	current(t, m, c)
	if got, _ := store.GetSession(t.Context(), s.ID); !got.LastSeenAt.Equal(clk.t) {
		t.Errorf("last seen = %v, want %v", got.LastSeenAt, clk.t)
	}

	if err := store.EndSession(t.Context(), s.ID, clk.t); err != nil {
		t.Fatal(err)
	}
	if cur := current(t, m, c); cur != nil {
		t.Error("an ended session is current")
	}
}

func TestNewSessionOnEverySignIn(t *testing.T) {
	m, _, store := setup(t, Config{})
	first, s1 := start(t, m, nil)
	second, s2 := start(t, m, first)
	if first.Value == second.Value || s1.ID == s2.ID {
		t.Fatal("sign-in reused the session")
	}
	if got, err := store.GetSession(t.Context(), s1.ID); err != nil || got.EndedAt == nil {
		t.Errorf("superseded session not ended: %+v %v", got, err)
	}
	if current(t, m, second) == nil {
		t.Error("new session is not current")
	}
}

func TestDisabledUserHasNoSession(t *testing.T) {
	store := sqlitetest.NewStore(t)
	now := time.Now()
	if err := store.CreateUser(t.Context(), storage.User{ID: "u1", Email: "a@example.com", Disabled: true, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	m := NewManager(store, Config{}, Options{})
	c, _ := start(t, m, nil)
	if current(t, m, c) != nil {
		t.Error("a disabled user's session is current")
	}
}

// TestAlive: Alive is what oauth asks of a grant's login session. A
// session is alive while it has not ended, is within its idle and
// absolute timeouts, and its user exists and is enabled.
func TestAlive(t *testing.T) {
	cfg := Config{IdleTimeout: time.Hour, AbsoluteTimeout: 3 * time.Hour, TouchInterval: time.Minute}
	tests := []struct {
		name string
		// change runs after the sign-in, with the clock at the sign-in.
		change func(t *testing.T, clk *fakeClock, store storage.Store, s storage.Session)
		id     string // default: the session's
		want   bool
	}{
		{name: "live", want: true},
		{name: "just before the idle timeout", want: true, change: func(t *testing.T, clk *fakeClock, _ storage.Store, _ storage.Session) {
			clk.t = clk.t.Add(time.Hour - time.Second)
		}},
		{name: "idle timeout", change: func(t *testing.T, clk *fakeClock, _ storage.Store, _ storage.Session) {
			clk.t = clk.t.Add(time.Hour)
		}},
		{name: "just before the absolute timeout, kept active", want: true, change: func(t *testing.T, clk *fakeClock, store storage.Store, s storage.Session) {
			keepActive(t, clk, store, s.ID, 3*time.Hour-time.Second)
		}},
		{name: "absolute timeout however active", change: func(t *testing.T, clk *fakeClock, store storage.Store, s storage.Session) {
			keepActive(t, clk, store, s.ID, 3*time.Hour)
		}},
		{name: "ended", change: func(t *testing.T, clk *fakeClock, store storage.Store, s storage.Session) {
			if err := store.EndSession(t.Context(), s.ID, clk.t); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "all the user's sessions ended", change: func(t *testing.T, clk *fakeClock, store storage.Store, s storage.Session) {
			if _, err := store.EndUserSessions(t.Context(), "u1", clk.t); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "user disabled", change: func(t *testing.T, clk *fakeClock, store storage.Store, s storage.Session) {
			if err := store.SetUserDisabled(t.Context(), "u1", true, clk.t); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "user enabled again", want: true, change: func(t *testing.T, clk *fakeClock, store storage.Store, s storage.Session) {
			for _, d := range []bool{true, false} {
				if err := store.SetUserDisabled(t.Context(), "u1", d, clk.t); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "unknown id", id: "no-such-session"},
		{name: "empty id", id: " "},
		{name: "the cookie secret is not the id", id: "cookie"},
	}
	for _, tt := range tests {
		for _, touch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/touch=%v", tt.name, touch), func(t *testing.T) {
				m, clk, store := setup(t, cfg)
				c, s := start(t, m, nil)
				if tt.change != nil {
					tt.change(t, clk, store, s)
				}
				id := s.ID
				switch tt.id {
				case "":
				case " ":
					id = ""
				case "cookie":
					id = c.Value
				default:
					id = tt.id
				}
				before, _ := store.GetSession(t.Context(), s.ID)

				got, err := m.Alive(t.Context(), id, touch)

				if err != nil || got != tt.want {
					t.Fatalf("Alive = %v, %v; want %v", got, err, tt.want)
				}
				// Only a live session is touched, and only when asked.
				after, err := store.GetSession(t.Context(), s.ID)
				if err != nil {
					t.Fatal(err)
				}
				wantSeen := before.LastSeenAt
				if touch && tt.want && clk.t.Sub(before.LastSeenAt) >= cfg.TouchInterval {
					wantSeen = clk.t
				}
				if !after.LastSeenAt.Equal(wantSeen) {
					t.Errorf("last seen %v, want %v", after.LastSeenAt, wantSeen)
				}
			})
		}
	}
}

// keepActive has the person use session id every 50 minutes until d after
// the sign-in, and leaves the clock there.
func keepActive(t *testing.T, clk *fakeClock, store storage.Store, id string, d time.Duration) {
	t.Helper()
	end := clk.t.Add(d)
	for clk.t.Add(50 * time.Minute).Before(end) {
		clk.t = clk.t.Add(50 * time.Minute)
		if err := store.TouchSession(t.Context(), id, clk.t); err != nil {
			t.Fatal(err)
		}
	}
	clk.t = end
}

// TestAliveTouch: an app's activity (touch) keeps the session alive the
// way browsing does, written at most once per TouchInterval.
func TestAliveTouch(t *testing.T) {
	m, clk, store := setup(t, Config{IdleTimeout: time.Hour, TouchInterval: time.Minute})
	_, s := start(t, m, nil)
	lastSeen := func() time.Time {
		t.Helper()
		got, err := store.GetSession(t.Context(), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastSeenAt
	}
	steps := []struct {
		advance  time.Duration
		touch    bool
		want     bool
		wantSeen time.Duration // from the sign-in
	}{
		{30 * time.Second, true, true, 0},                 // within the interval: not written
		{30 * time.Second, true, true, time.Minute},       // a minute since: written
		{50 * time.Minute, false, true, time.Minute},      // not asked to touch: not written
		{5 * time.Minute, true, true, 56 * time.Minute},   // 55 min idle, alive, written
		{59 * time.Minute, true, true, 115 * time.Minute}, // alive only thanks to the last touch
		{time.Hour, false, false, 115 * time.Minute},      // idle an hour: over
		{0, true, false, 115 * time.Minute},               // and touching does not revive it
	}
	for i, st := range steps {
		clk.t = clk.t.Add(st.advance)
		got, err := m.Alive(t.Context(), s.ID, st.touch)
		if err != nil || got != st.want {
			t.Fatalf("step %d: Alive = %v, %v; want %v", i, got, err, st.want)
		}
		if seen := lastSeen(); !seen.Equal(s.LastSeenAt.Add(st.wantSeen)) {
			t.Errorf("step %d: last seen +%v, want +%v", i, seen.Sub(s.LastSeenAt), st.wantSeen)
		}
	}
}

// TestAliveStoreDown: when the store cannot answer, Alive says so rather
// than guessing either way.
func TestAliveStoreDown(t *testing.T) {
	m, _, store := setup(t, Config{})
	_, s := start(t, m, nil)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, touch := range []bool{false, true} {
		if got, err := m.Alive(t.Context(), s.ID, touch); err == nil || got {
			t.Errorf("Alive(touch=%v) = %v, %v; want an error", touch, got, err)
		}
	}
}

// TestEnd: ending a session ends it in storage and clears the cookie; with
// no session (an empty id) only the cookie goes.
func TestEnd(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			m, clk, store := setup(t, Config{Secure: secure})
			c, s := start(t, m, nil)
			clk.t = clk.t.Add(time.Minute)
			for _, id := range []string{s.ID, ""} {
				rec := httptest.NewRecorder()
				if err := m.End(t.Context(), rec, id); err != nil {
					t.Fatalf("End(%q): %v", id, err)
				}
				cookies := rec.Result().Cookies()
				if len(cookies) != 1 || cookies[0].Name != m.CookieName() || cookies[0].Value != "" || cookies[0].MaxAge >= 0 ||
					cookies[0].Secure != secure || !cookies[0].HttpOnly || cookies[0].Path != "/" {
					t.Errorf("End(%q) set cookies %+v, want %s cleared", id, cookies, m.CookieName())
				}
			}
			got, err := store.GetSession(t.Context(), s.ID)
			if err != nil || got.EndedAt == nil || !got.EndedAt.Equal(clk.t) {
				t.Errorf("session after End: %+v, %v; want ended at %s", got, err, clk.t)
			}
			if current(t, m, c) != nil {
				t.Error("the ended session is still current")
			}
			if err := m.End(t.Context(), httptest.NewRecorder(), "no-such-session"); err == nil {
				t.Error("End of an unknown session: no error")
			}
		})
	}
}
