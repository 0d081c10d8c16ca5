package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
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
	audit  Recorder
}

// Recorder takes audit events (package audit's Recorder).
type Recorder interface {
	Record(ctx context.Context, e storage.AuditEvent)
}

type noRecorder struct{}

func (noRecorder) Record(context.Context, storage.AuditEvent) {}

// Options are the Manager's injected collaborators.
type Options struct {
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// Audit records the sessions a sign-in ends (evicted by the limit, or
	// the browser's previous one); default none.
	Audit Recorder
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
	if opts.Audit == nil {
		opts.Audit = noRecorder{}
	}
	return &Manager{cfg: cfg.withDefaults(), store: store, now: opts.Now, rand: opts.Rand, logger: opts.Logger, audit: opts.Audit}
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

// Limit is a concurrent-session policy: at most Max live sessions per user
// (0: unlimited), and what a sign-in beyond that does.
type Limit struct {
	Max    int
	Action storage.SessionLimitAction
}

// ErrLimit is returned by Start when the limit's action is to refuse the
// sign-in and the person already has Max live sessions.
var ErrLimit = storage.ErrSessionLimit

// Start begins a new session for a person who just authenticated and sets
// its cookie. A sign-in always gets a fresh session id and secret, so a
// session id planted before sign-in is worthless (session fixation); the
// session the browser held before, if any, is ended.
//
// The concurrent-session limit is enforced in the same storage
// transaction that creates the session, so it holds however many
// instances sign the same person in at once: past the limit, the least
// recently active sessions are ended (evict_oldest) or the sign-in fails
// with ErrLimit and nothing is written (refuse). The browser's previous
// session never counts: signing in again in the same browser replaces it.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, amr []string, limit Limit) (storage.Session, error) {
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
		IP:         ClientIP(r),
		UserAgent:  truncate(r.UserAgent(), 512),
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(m.cfg.AbsoluteTimeout),
	}
	sl := storage.SessionLimit{Max: limit.Max, Action: limit.Action, IdleCutoff: now.Add(-m.cfg.IdleTimeout)}
	replaced := false // the browser's previous session was still open
	if old, err := r.Cookie(m.CookieName()); err == nil && old.Value != "" && len(old.Value) <= 128 {
		prev, err := m.store.GetSessionBySecret(ctx, secrets.Hash(old.Value))
		switch {
		case err == nil:
			sl.Replaces = prev.ID
			replaced = prev.EndedAt == nil
		case !errors.Is(err, storage.ErrNotFound):
			return storage.Session{}, fmt.Errorf("start session: find previous session: %w", err)
		}
	}
	evicted, err := m.store.CreateSessionWithLimit(ctx, s, sl, now)
	if errors.Is(err, storage.ErrSessionLimit) {
		m.logger.InfoContext(ctx, "sign-in refused: session limit", slog.String("user_id", userID), slog.Int("limit", limit.Max))
		return storage.Session{}, fmt.Errorf("start session: %w", err)
	}
	if err != nil {
		return storage.Session{}, fmt.Errorf("start session: %w", err)
	}
	for _, sid := range evicted {
		m.logger.InfoContext(ctx, "session evicted: session limit", slog.String("sid", sid), slog.String("user_id", userID), slog.Int("limit", limit.Max))
		m.audit.Record(ctx, storage.AuditEvent{Type: audit.SessionEvicted, Actor: audit.User(userID), Time: now,
			SessionID: sid, UserID: userID, Details: map[string]any{"limit": limit.Max, "by_session": id}})
	}
	if replaced {
		// A sign-in in a browser that had a session ends that one (it
		// may even be another person's): recorded under the old sid, so
		// that its story has an end.
		m.audit.Record(ctx, storage.AuditEvent{Type: audit.SessionRevoked, Actor: audit.User(userID), Time: now,
			SessionID: sl.Replaces, Details: map[string]any{"by": "new_sign_in", "by_session": id}})
	}
	m.setCookie(w, secret, int(m.cfg.AbsoluteTimeout.Seconds()))
	m.logger.InfoContext(ctx, "session started", slog.String("sid", id), slog.String("user_id", userID))
	return s, nil
}

func (m *Manager) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     m.CookieName(),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   m.cfg.Secure,
		SameSite: http.SameSiteLaxMode,
	})
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

// ClearCookie tells the browser to forget its session cookie, after its
// session has been ended.
func (m *Manager) ClearCookie(w http.ResponseWriter) { m.setCookie(w, "", -1) }

// List returns the user's live sessions (not ended, within both
// timeouts), most recently active first.
func (m *Manager) List(ctx context.Context, userID string) ([]storage.Session, error) {
	now := m.now()
	all, err := m.store.ListUserSessions(ctx, userID, now)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	live := all[:0]
	for _, s := range all {
		if m.live(s, now) {
			live = append(live, s)
		}
	}
	return live, nil
}

// EndOwn ends the session sid if it belongs to userID and is still live.
// Otherwise it returns storage.ErrNotFound, whether the session does not
// exist, belongs to someone else or has already ended: a person learns
// nothing about sessions that are not theirs. The end goes through
// storage.EndSession, so the session's bound grants and refresh tokens end
// with it (and the apps are told).
func (m *Manager) EndOwn(ctx context.Context, userID, sid string) error {
	s, err := m.store.GetSession(ctx, sid)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if s.UserID != userID || !m.live(s, m.now()) {
		return fmt.Errorf("end session: %w", storage.ErrNotFound)
	}
	if err := m.store.EndSession(ctx, sid, m.now()); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	m.logger.InfoContext(ctx, "session ended by its user", slog.String("sid", sid), slog.String("user_id", userID))
	return nil
}

// EndOthers ends every session of the user that has not ended, except
// keep, each through storage.EndSession, and returns the ids of those it ended.
// Idle sessions are ended too: they are dead already, but ending them
// tells their apps.
func (m *Manager) EndOthers(ctx context.Context, userID, keep string) ([]string, error) {
	list, err := m.store.ListUserSessions(ctx, userID, m.now())
	if err != nil {
		return nil, fmt.Errorf("end other sessions: %w", err)
	}
	var ended []string
	for _, s := range list {
		if s.ID == keep {
			continue
		}
		if err := m.store.EndSession(ctx, s.ID, m.now()); err != nil {
			return ended, fmt.Errorf("end session: %w", err)
		}
		ended = append(ended, s.ID)
	}
	m.logger.InfoContext(ctx, "other sessions ended by their user", slog.String("user_id", userID), slog.Int("ended", len(ended)))
	return ended, nil
}

// ClientIP is the peer address. Behind a proxy this is the proxy; trusting
// X-Forwarded-For needs an explicit list of trusted proxies, which is not
// configured yet. It is the audit trail's rule, so that a session, the
// throttle and the audit events always name the same address.
func ClientIP(r *http.Request) string {
	ip, _ := audit.FromRequest(r)
	return ip
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
