package session

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// startLimited signs u1 in from a browser holding prev (nil: a new
// browser) under limit, and returns the cookie set (nil if none).
func startLimited(t *testing.T, m *Manager, prev *http.Cookie, limit Limit) (*http.Cookie, storage.Session, error) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://idp.example/login", nil)
	if prev != nil {
		req.AddCookie(prev)
	}
	rec := httptest.NewRecorder()
	s, err := m.Start(t.Context(), rec, req, "u1", []string{"pwd"}, limit)
	var c *http.Cookie
	if cs := rec.Result().Cookies(); len(cs) == 1 {
		c = cs[0]
	}
	return c, s, err
}

func TestStartUnderLimit(t *testing.T) {
	evict := Limit{Max: 2, Action: storage.SessionLimitEvictOldest}
	refuse := Limit{Max: 2, Action: storage.SessionLimitRefuse}
	tests := []struct {
		name string
		run  func(t *testing.T, m *Manager, clk *fakeClock)
	}{
		{"evict_oldest ends the least recently active session", func(t *testing.T, m *Manager, clk *fakeClock) {
			a, _, err := startLimited(t, m, nil, evict)
			must(t, err)
			clk.t = clk.t.Add(2 * time.Minute)
			b, _, err := startLimited(t, m, nil, evict)
			must(t, err)
			clk.t = clk.t.Add(2 * time.Minute)
			if current(t, m, a) == nil { // a is now the most recently active
				t.Fatal("a not current")
			}
			clk.t = clk.t.Add(2 * time.Minute)
			c, _, err := startLimited(t, m, nil, evict)
			must(t, err)
			if current(t, m, b) != nil {
				t.Error("b, the least recently active, survived")
			}
			if current(t, m, a) == nil || current(t, m, c) == nil {
				t.Error("a or c was ended")
			}
		}},
		{"refuse fails the sign-in and writes nothing", func(t *testing.T, m *Manager, clk *fakeClock) {
			a, _, err := startLimited(t, m, nil, refuse)
			must(t, err)
			b, _, err := startLimited(t, m, nil, refuse)
			must(t, err)
			c, _, err := startLimited(t, m, nil, refuse)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("third sign-in: %v, want ErrLimit", err)
			}
			if c != nil {
				t.Error("refused sign-in set a cookie")
			}
			if current(t, m, a) == nil || current(t, m, b) == nil {
				t.Error("a refused sign-in ended a session")
			}
			list, err := m.List(t.Context(), "u1")
			must(t, err)
			if len(list) != 2 {
				t.Errorf("%d live sessions, want 2", len(list))
			}
		}},
		{"signing in again in the same browser is not refused", func(t *testing.T, m *Manager, clk *fakeClock) {
			a, _, err := startLimited(t, m, nil, refuse)
			must(t, err)
			b, _, err := startLimited(t, m, nil, refuse)
			must(t, err)
			b2, _, err := startLimited(t, m, b, refuse)
			must(t, err)
			if current(t, m, b) != nil || current(t, m, b2) == nil || current(t, m, a) == nil {
				t.Error("re-sign-in did not replace the browser's own session only")
			}
		}},
		{"idle sessions do not count", func(t *testing.T, m *Manager, clk *fakeClock) {
			_, _, err := startLimited(t, m, nil, refuse)
			must(t, err)
			_, _, err = startLimited(t, m, nil, refuse)
			must(t, err)
			clk.t = clk.t.Add(25 * time.Hour) // past the default 24 h idle timeout
			_, _, err = startLimited(t, m, nil, refuse)
			must(t, err)
		}},
		{"zero is unlimited", func(t *testing.T, m *Manager, clk *fakeClock) {
			for range 5 {
				_, _, err := startLimited(t, m, nil, Limit{Action: storage.SessionLimitRefuse})
				must(t, err)
			}
			list, err := m.List(t.Context(), "u1")
			must(t, err)
			if len(list) != 5 {
				t.Errorf("%d live sessions, want 5", len(list))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clk, _ := setup(t, Config{})
			tt.run(t, m, clk)
		})
	}
}

func TestEndOwnAndOthers(t *testing.T) {
	m, clk, store := setup(t, Config{})
	now := clk.t
	must(t, store.CreateUser(t.Context(), storage.User{ID: "u2", Email: "b@example.com", CreatedAt: now, UpdatedAt: now}))
	a, sa := start(t, m, nil)
	b, sb := start(t, m, nil)
	c, _ := start(t, m, nil)
	theirs := storage.Session{ID: "theirs", SecretHash: []byte("x"), UserID: "u2", AuthTime: now, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	must(t, store.CreateSession(t.Context(), theirs))

	tests := []struct {
		name, sid string
		wantErr   error
	}{
		{"another user's session", "theirs", storage.ErrNotFound},
		{"unknown session", "nope", storage.ErrNotFound},
		{"own session", sb.ID, nil},
		{"own session again (ended)", sb.ID, storage.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.EndOwn(t.Context(), "u1", tt.sid)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("EndOwn(%s) = %v, want %v", tt.sid, err, tt.wantErr)
			}
		})
	}
	if got, _ := store.GetSession(t.Context(), "theirs"); got.EndedAt != nil {
		t.Error("another user's session was ended")
	}
	if current(t, m, b) != nil {
		t.Error("ended session still current")
	}
	ended, err := m.EndOthers(t.Context(), "u1", sa.ID)
	must(t, err)
	if len(ended) != 1 {
		t.Errorf("EndOthers ended %v, want one session (c)", ended)
	}
	if current(t, m, a) == nil || current(t, m, c) != nil {
		t.Error("EndOthers did not keep a and end c")
	}
	if got, _ := store.GetSession(t.Context(), "theirs"); got.EndedAt != nil {
		t.Error("EndOthers ended another user's session")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
