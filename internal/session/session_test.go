package session

import (
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
	s, err := m.Start(t.Context(), rec, req, "u1", []string{"pwd"})
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
