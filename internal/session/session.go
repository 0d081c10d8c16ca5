package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Config sets cookie and timeout policy. Zero values take the defaults.
type Config struct {
	// Secure marks the cookie Secure and gives it the __Host- prefix; set
	// it whenever the issuer is https.
	Secure bool
	// IdleTimeout ends a session not used for this long (default 24 h).
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after sign-in, however
	// active (default 7 days).
	AbsoluteTimeout time.Duration
	// TouchInterval bounds how often a session's last-seen time is written
	// (default 1 minute), so that every request is not a database write.
	TouchInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 24 * time.Hour
	}
	if c.AbsoluteTimeout == 0 {
		c.AbsoluteTimeout = 7 * 24 * time.Hour
	}
	if c.TouchInterval == 0 {
		c.TouchInterval = time.Minute
	}
	return c
}

// Manager starts, finds and ends login sessions.
type Manager struct {
	cfg    Config
	store  storage.Store
	now    func() time.Time
	rand   io.Reader
	logger *slog.Logger
}

// Options are the Manager's injected collaborators.
type Options struct {
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// NewManager returns a Manager over store.
func NewManager(store storage.Store, cfg Config, opts Options) *Manager {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg.withDefaults(), store: store, now: opts.Now, rand: opts.Rand, logger: opts.Logger}
}

// CookieName is the session cookie's name. With the __Host- prefix the
// browser refuses the cookie unless it is Secure, has Path=/ and no
// Domain, so a sibling subdomain cannot plant one.
func (m *Manager) CookieName() string {
	if m.cfg.Secure {
		return "__Host-gatehouse_session"
	}
	return "gatehouse_session"
}

// Current is a live session and its user.
type Current struct {
	Session storage.Session
	User    storage.User
}

// Current returns the request's live session, or nil if there is none: no
// cookie, an unknown or ended session, a timed-out one, or a disabled
// user. An error means the store could not answer.
func (m *Manager) Current(ctx context.Context, r *http.Request) (*Current, error) {
	c, err := r.Cookie(m.CookieName())
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, nil
	}
	s, err := m.store.GetSessionBySecret(ctx, secrets.Hash(c.Value))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("current session: %w", err)
	}
	return m.check(ctx, s, true)
}

// Alive reports whether the session with this public id is still alive,
// and records activity on it when touch is set, so that an app refreshing
// its tokens keeps the person's login session alive the way browsing
// does. It implements oauth.Sessions.
func (m *Manager) Alive(ctx context.Context, id string, touch bool) (bool, error) {
	s, err := m.store.GetSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session alive: %w", err)
	}
	cur, err := m.check(ctx, s, touch)
	return cur != nil, err
}

// check returns s and its user if s is alive — not ended, within its idle
// and absolute timeouts, its user present and enabled — and nil if not.
// With touch it records activity, at most once per TouchInterval so that
// not every request is a database write.
func (m *Manager) check(ctx context.Context, s storage.Session, touch bool) (*Current, error) {
	now := m.now()
	if !m.live(s, now) {
		return nil, nil
	}
	u, err := m.store.GetUser(ctx, s.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("session user: %w", err)
	}
	if u.Disabled {
		return nil, nil
	}
	if touch && now.Sub(s.LastSeenAt) >= m.cfg.TouchInterval {
		if err := m.store.TouchSession(ctx, s.ID, now); err != nil {
			if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
				return nil, nil // ended meanwhile
			}
			return nil, fmt.Errorf("touch session: %w", err)
		}
		s.LastSeenAt = now
	}
	return &Current{Session: s, User: u}, nil
}

// live reports whether s may still be used at now.
func (m *Manager) live(s storage.Session, now time.Time) bool {
	return s.EndedAt == nil &&
		now.Before(s.ExpiresAt) &&
		now.Sub(s.LastSeenAt) < m.cfg.IdleTimeout
}

// Start begins a new session for a person who just authenticated and sets
// its cookie. A sign-in always gets a fresh session id and secret, so a
// session id planted before sign-in is worthless (session fixation); the
// session the browser held before, if any, is ended.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, amr []string) (storage.Session, error) {
	secret, err := secrets.New(m.rand)
	if err != nil {
		return storage.Session{}, fmt.Errorf("start session: %w", err)
	}
	id, err := secrets.NewID(m.rand)
	if err != nil {
		return storage.Session{}, fmt.Errorf("start session: %w", err)
	}
	now := m.now()
	s := storage.Session{
		ID:         id,
		SecretHash: secrets.Hash(secret),
		UserID:     userID,
		AuthTime:   now,
		AMR:        amr,
		IP:         clientIP(r),
		UserAgent:  truncate(r.UserAgent(), 512),
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(m.cfg.AbsoluteTimeout),
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return storage.Session{}, fmt.Errorf("start session: %w", err)
	}
	if old, err := r.Cookie(m.CookieName()); err == nil && old.Value != "" {
		if prev, err := m.store.GetSessionBySecret(ctx, secrets.Hash(old.Value)); err == nil {
			if err := m.store.EndSession(ctx, prev.ID, now); err != nil {
				m.logger.WarnContext(ctx, "end superseded session", slog.String("sid", prev.ID), slog.Any("error", err))
			}
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name:     m.CookieName(),
		Value:    secret,
		Path:     "/",
		MaxAge:   int(m.cfg.AbsoluteTimeout.Seconds()),
		HttpOnly: true,
		Secure:   m.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	})
	m.logger.InfoContext(ctx, "session started", slog.String("sid", id), slog.String("user_id", userID))
	return s, nil
}

// End ends the session with this id (storage.EndSession: its bound grants
// are revoked and the apps in it are told by back-channel logout) and
// clears the browser's session cookie. id may be empty (no session to
// end): the cookie is cleared all the same.
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, id string) error {
	m.ClearCookie(w)
	if id == "" {
		return nil
	}
	if err := m.store.EndSession(ctx, id, m.now()); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	m.logger.InfoContext(ctx, "session ended", slog.String("sid", id))
	return nil
}

// ClearCookie tells the browser to drop its session cookie.
func (m *Manager) ClearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name:     m.CookieName(),
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   m.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// clientIP is the peer address. Behind a proxy this is the proxy; trusting
// X-Forwarded-For needs an explicit list of trusted proxies, which is not
// configured yet.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
