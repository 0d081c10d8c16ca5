package oauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// TokenKind says what a presented token turned out to be.
type TokenKind int

// Token kinds.
const (
	KindUnknown TokenKind = iota
	KindAccessJWT
	KindAccessOpaque
	KindRefresh
)

// TokenInfo is what the server knows about a presented token. Only Active
// tokens carry the rest.
type TokenInfo struct {
	Active    bool
	Kind      TokenKind
	ClientID  string
	Subject   string // the user, or the client for machine tokens
	UserID    string // "" for machine tokens
	GrantID   string // "" for machine tokens
	JTI       string // JWT access tokens only
	Scopes    []string
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Inspect finds out whether token is an active token of this server, and
// what it is. It never returns a stale answer: revocation state is read
// from the database on every call. An error means the database could not
// answer; the caller must then fail closed (503), never report active.
//
// A token is inactive when it is unknown, malformed, badly signed,
// expired, revoked, spent (refresh tokens), or when its grant is revoked,
// its login session has ended (for grants without offline_access), its
// user is disabled, or its client has been deleted.
func (s *Server) Inspect(ctx context.Context, token string) (TokenInfo, error) {
	if token == "" || len(token) > maxParamLen {
		return TokenInfo{}, nil
	}
	now := s.deps.Now()
	if looksLikeJWT(token) {
		return s.inspectJWT(ctx, token, now)
	}
	hash := secrets.Hash(token)
	at, err := s.deps.Store.GetAccessToken(ctx, hash)
	switch {
	case err == nil:
		return s.inspectOpaque(ctx, at, now)
	case !errors.Is(err, storage.ErrNotFound):
		return TokenInfo{}, fmt.Errorf("inspect: %w", err)
	}
	rt, err := s.deps.Store.GetRefreshToken(ctx, hash)
	switch {
	case err == nil:
		return s.inspectRefresh(ctx, rt, now)
	case errors.Is(err, storage.ErrNotFound):
		return TokenInfo{}, nil
	default:
		return TokenInfo{}, fmt.Errorf("inspect: %w", err)
	}
}

func (s *Server) inspectJWT(ctx context.Context, token string, now time.Time) (TokenInfo, error) {
	c, ok := s.verifyAccessJWT(token, now)
	if !ok {
		return TokenInfo{}, nil
	}
	revoked, err := s.deps.Store.IsJWTRevoked(ctx, c.ID)
	if err != nil {
		return TokenInfo{}, fmt.Errorf("inspect: %w", err)
	}
	if revoked {
		return TokenInfo{}, nil
	}
	info := TokenInfo{
		Kind:      KindAccessJWT,
		ClientID:  c.ClientID,
		Subject:   c.Subject,
		GrantID:   c.GrantID(),
		JTI:       c.ID,
		Scopes:    parseScope(c.Scope),
		Audience:  c.Audience,
		ExpiresAt: c.ExpiresAt.Time(),
	}
	if c.IssuedAt != nil {
		info.IssuedAt = c.IssuedAt.Time()
	}
	return s.confirm(ctx, info, now)
}

func (s *Server) inspectOpaque(ctx context.Context, at storage.AccessToken, now time.Time) (TokenInfo, error) {
	if at.RevokedAt != nil || !now.Before(at.ExpiresAt) {
		return TokenInfo{}, nil
	}
	return s.confirm(ctx, TokenInfo{
		Kind:      KindAccessOpaque,
		ClientID:  at.ClientID,
		Subject:   at.Subject,
		GrantID:   at.GrantID,
		Scopes:    at.Scopes,
		Audience:  at.Audience,
		IssuedAt:  at.CreatedAt,
		ExpiresAt: at.ExpiresAt,
	}, now)
}

func (s *Server) inspectRefresh(ctx context.Context, rt storage.RefreshToken, now time.Time) (TokenInfo, error) {
	if rt.UsedAt != nil || !now.Before(rt.ExpiresAt) || !now.Before(rt.AbsoluteExpiresAt) {
		return TokenInfo{}, nil
	}
	return s.confirm(ctx, TokenInfo{
		Kind:      KindRefresh,
		ClientID:  rt.ClientID,
		Subject:   rt.UserID,
		GrantID:   rt.GrantID,
		Scopes:    rt.Scopes,
		IssuedAt:  rt.CreatedAt,
		ExpiresAt: earlier(rt.ExpiresAt, rt.AbsoluteExpiresAt),
	}, now)
}

// confirm checks what the token stands on: its grant (a user's token) or
// its client (a machine token). It returns info marked active, or an
// inactive TokenInfo.
func (s *Server) confirm(ctx context.Context, info TokenInfo, now time.Time) (TokenInfo, error) {
	if info.GrantID == "" {
		// A machine token lives as long as its client does. The database is
		// asked, not the client cache: a deleted client is a revocation,
		// and revocation state is never answered from a cache.
		if _, err := s.deps.Store.GetClient(ctx, info.ClientID); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return TokenInfo{}, nil
			}
			return TokenInfo{}, fmt.Errorf("inspect: %w", err)
		}
		info.Active = true
		return info, nil
	}
	g, live, err := s.liveGrant(ctx, info.GrantID, false)
	if err != nil || !live {
		return TokenInfo{}, err
	}
	if g.ClientID != info.ClientID || g.UserID != info.Subject {
		return TokenInfo{}, nil
	}
	info.UserID = g.UserID
	info.Active = true
	return info, nil
}

// liveGrant returns the grant and whether tokens may still be used under
// it: not revoked, its user exists and is enabled, and — unless it is
// offline — its login session is alive. touch records activity on that
// session. An error means the database could not answer.
func (s *Server) liveGrant(ctx context.Context, id string, touch bool) (storage.Grant, bool, error) {
	g, err := s.deps.Store.GetGrant(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Grant{}, false, nil
	}
	if err != nil {
		return storage.Grant{}, false, fmt.Errorf("get grant: %w", err)
	}
	if g.RevokedAt != nil {
		return g, false, nil
	}
	if !g.Offline && g.SessionID != "" {
		// Alive also checks that the session's user — the grant's user —
		// exists and is enabled.
		alive, err := s.deps.Sessions.Alive(ctx, g.SessionID, touch)
		if err != nil {
			return g, false, fmt.Errorf("check session: %w", err)
		}
		return g, alive, nil
	}
	u, err := s.deps.Store.GetUser(ctx, g.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return g, false, nil
	}
	if err != nil {
		return g, false, fmt.Errorf("get user: %w", err)
	}
	return g, !u.Disabled, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
