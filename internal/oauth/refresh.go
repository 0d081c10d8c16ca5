package oauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// successorOf derives the refresh token that replaces token when it is
// spent: HMAC-SHA256 under the server's successor key. Because it is
// derived, not random, a retry of the same refresh within the grace window
// gets the very same successor, and the successor is never stored in
// the clear anywhere. Without the key it is as unpredictable as a random
// 256-bit value.
func (s *Server) successorOf(token string) string {
	return deriveSuccessor(s.deps.SuccessorKey, token)
}

func deriveSuccessor(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("gatehouse refresh successor v1\x00"))
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// successorFor returns the successor token was spent for, if this server
// derives it: under the successor key or a previous one (another instance
// may still be on the previous key-encryption key).
func (s *Server) successorFor(token string, successorHash []byte) (string, bool) {
	for _, key := range append([][]byte{s.deps.SuccessorKey}, s.deps.PreviousSuccessorKeys...) {
		next := deriveSuccessor(key, token)
		if bytes.Equal(secrets.Hash(next), successorHash) {
			return next, true
		}
	}
	return "", false
}

// refreshLifetimes are a client's idle and absolute refresh token
// lifetimes: its own when registered, the server's otherwise.
func (s *Server) refreshLifetimes(c storage.Client) (idle, absolute time.Duration) {
	idle, absolute = s.cfg.RefreshIdleTTL, s.cfg.RefreshAbsoluteTTL
	if v := c.Metadata.RefreshTokenIdleLifetime; v > 0 {
		idle = time.Duration(v) * time.Second
	}
	if v := c.Metadata.RefreshTokenAbsoluteLifetime; v > 0 {
		absolute = time.Duration(v) * time.Second
	}
	return idle, absolute
}

// newRefreshToken starts a grant's refresh token family.
func (s *Server) newRefreshToken(client storage.Client, g storage.Grant, now time.Time) (string, *storage.RefreshToken, error) {
	tok, err := secrets.New(s.deps.Rand)
	if err != nil {
		return "", nil, fmt.Errorf("issue refresh token: %w", err)
	}
	idle, absolute := s.refreshLifetimes(client)
	abs := now.Add(absolute)
	return tok, &storage.RefreshToken{
		TokenHash:         secrets.Hash(tok),
		GrantID:           g.ID,
		ClientID:          g.ClientID,
		UserID:            g.UserID,
		Scopes:            g.Scopes,
		CreatedAt:         now,
		ExpiresAt:         earlier(now.Add(idle), abs),
		AbsoluteExpiresAt: abs,
	}, nil
}

// refresh runs the refresh_token grant (RFC 6749 §6) with rotation and
// reuse detection (RFC 9700 §4.14.2).
func (s *Server) refresh(ctx context.Context, client storage.Client, req TokenRequest) (*TokenResponse, *Error) {
	if req.RefreshToken == "" {
		return nil, InvalidRequest("refresh_token is missing")
	}
	hash := secrets.Hash(req.RefreshToken)
	rt, err := s.deps.Store.GetRefreshToken(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, InvalidGrant("the refresh token is invalid")
	}
	if err != nil {
		return nil, TemporarilyUnavailable(err)
	}
	// RFC 6749 §6: the refresh token must have been issued to the
	// authenticated client. Not a reuse: nothing is revoked.
	if rt.ClientID != client.ID {
		return nil, InvalidGrant("the refresh token is invalid")
	}
	now := s.deps.Now()
	// Reuse is detected before anything else about the request is judged.
	if rt.UsedAt != nil {
		return s.spentRefresh(ctx, client, rt, req, now)
	}
	scopes, e := narrowScopes(rt.Scopes, req.Scope)
	if e != nil {
		return nil, e
	}
	audience, e := resourceAudience(client, req.Resources)
	if e != nil {
		return nil, e
	}
	if !now.Before(rt.ExpiresAt) || !now.Before(rt.AbsoluteExpiresAt) {
		return nil, InvalidGrant("the refresh token has expired")
	}
	g, live, err := s.liveGrant(ctx, rt.GrantID, true)
	if err != nil {
		return nil, TemporarilyUnavailable(err)
	}
	if !live {
		return nil, InvalidGrant("the grant behind the refresh token has ended")
	}

	next := s.successorOf(req.RefreshToken)
	idle, _ := s.refreshLifetimes(client)
	nextRT := storage.RefreshToken{
		TokenHash:         secrets.Hash(next),
		GrantID:           rt.GrantID,
		ClientID:          rt.ClientID,
		UserID:            rt.UserID,
		Scopes:            rt.Scopes, // RFC 6749 §6: the new refresh token keeps the old one's scope
		CreatedAt:         now,
		ExpiresAt:         earlier(now.Add(idle), rt.AbsoluteExpiresAt),
		AbsoluteExpiresAt: rt.AbsoluteExpiresAt,
	}
	at, atRow, err := s.issueAccessToken(client, accessToken{
		Subject: g.UserID, ClientID: client.ID, GrantID: g.ID, Scopes: scopes, Audience: audience,
	}, now)
	if err != nil {
		return nil, ServerError(err)
	}
	switch err := s.deps.Store.RotateRefreshToken(ctx, hash, now, nextRT, atRow); {
	case errors.Is(err, storage.ErrConflict):
		// Another request spent it a moment ago (two tabs, a retry).
		rt, err := s.deps.Store.GetRefreshToken(ctx, hash)
		if err != nil {
			return nil, TemporarilyUnavailable(err)
		}
		return s.spentRefresh(ctx, client, rt, req, now)
	case errors.Is(err, storage.ErrRevoked), errors.Is(err, storage.ErrNotFound):
		return nil, InvalidGrant("the grant behind the refresh token has ended")
	case err != nil:
		return nil, TemporarilyUnavailable(err)
	}
	s.deps.Logger.InfoContext(ctx, "token issued",
		slog.String("grant_type", GrantRefreshToken), slog.String("client_id", client.ID),
		slog.String("user_id", rt.UserID), slog.String("grant_id", rt.GrantID))
	s.recordRefreshed(ctx, g, scopes, false)
	return s.tokenResponse(at, next, scopes), nil
}

// spentRefresh answers a refresh token that has already been spent.
//
// Within the grace window, if the successor it was spent for is still
// unspent, this is the same refresh arriving twice (two tabs, a client
// retrying after a lost response): the answer carries that same successor,
// never a second one, and a fresh access token. Anything else is reuse of
// a spent token — the sign of a stolen token (RFC 9700 §4.14.2) — and the
// whole family is revoked: every refresh and access token of the grant.
func (s *Server) spentRefresh(ctx context.Context, client storage.Client, rt storage.RefreshToken, req TokenRequest, now time.Time) (*TokenResponse, *Error) {
	// The family's absolute end holds in the window too.
	if s.cfg.RefreshGrace > 0 && rt.UsedAt != nil && now.Sub(*rt.UsedAt) <= s.cfg.RefreshGrace && now.Before(rt.AbsoluteExpiresAt) {
		if next, ok := s.successorFor(req.RefreshToken, rt.SuccessorHash); ok {
			scopes, e := narrowScopes(rt.Scopes, req.Scope)
			if e != nil {
				return nil, e
			}
			audience, e := resourceAudience(client, req.Resources)
			if e != nil {
				return nil, e
			}
			succ, err := s.deps.Store.GetRefreshToken(ctx, rt.SuccessorHash)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, TemporarilyUnavailable(err)
			}
			if err == nil && succ.UsedAt == nil {
				g, live, err := s.liveGrant(ctx, rt.GrantID, true)
				if err != nil {
					return nil, TemporarilyUnavailable(err)
				}
				if !live {
					return nil, InvalidGrant("the grant behind the refresh token has ended")
				}
				at, atRow, err := s.issueAccessToken(client, accessToken{
					Subject: g.UserID, ClientID: client.ID, GrantID: g.ID, Scopes: scopes, Audience: audience,
				}, now)
				if err != nil {
					return nil, ServerError(err)
				}
				if atRow != nil {
					if err := s.deps.Store.CreateAccessToken(ctx, *atRow); err != nil {
						return nil, TemporarilyUnavailable(err)
					}
				}
				s.recordRefreshed(ctx, g, scopes, true)
				return s.tokenResponse(at, next, scopes), nil
			}
		}
	}
	if err := s.deps.Store.RevokeGrant(ctx, rt.GrantID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.deps.Logger.ErrorContext(ctx, "revoke grant after refresh token reuse", slog.String("grant_id", rt.GrantID), slog.Any("error", err))
		return nil, TemporarilyUnavailable(err)
	}
	s.deps.Logger.WarnContext(ctx, "refresh token reused; grant revoked",
		slog.String("client_id", client.ID), slog.String("user_id", rt.UserID), slog.String("grant_id", rt.GrantID))
	// The token does not carry the login session; the grant does. A rare
	// path, so one more read is fine; without it the event still names
	// the grant.
	var sid string
	if g, err := s.deps.Store.GetGrant(ctx, rt.GrantID); err == nil {
		sid = g.SessionID
	}
	s.deps.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.RefreshReuseDetected, Actor: audit.Client(client.ID),
		UserID: rt.UserID, ClientID: client.ID, SessionID: sid,
		Details: map[string]any{"grant_id": rt.GrantID, "grant_revoked": true},
	})
	return nil, InvalidGrant("the refresh token has already been used")
}

// recordRefreshed audits a refresh under g. retry marks a spent token
// presented again within the grace window, answered with the same
// successor.
func (s *Server) recordRefreshed(ctx context.Context, g storage.Grant, scopes []string, retry bool) {
	d := map[string]any{"grant_type": GrantRefreshToken, "grant_id": g.ID, "scope": JoinScope(scopes)}
	if retry {
		d["retry"] = true
	}
	s.deps.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.TokenRefreshed, Actor: audit.Client(g.ClientID),
		UserID: g.UserID, ClientID: g.ClientID, SessionID: g.SessionID, Details: d,
	})
}

// narrowScopes applies a refresh request's scope parameter: RFC 6749 §6
// lets it narrow the access token's scope, never widen it.
func narrowScopes(granted []string, requested string) ([]string, *Error) {
	want := parseScope(requested)
	if len(want) == 0 {
		return granted, nil
	}
	for _, sc := range want {
		if !HasScope(granted, sc) {
			return nil, InvalidScope("the requested scope exceeds the scope originally granted")
		}
	}
	return want, nil
}

func (s *Server) tokenResponse(accessToken, refreshToken string, scopes []string) *TokenResponse {
	return &TokenResponse{
		AccessToken:  accessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(s.cfg.AccessTokenTTL.Seconds()),
		RefreshToken: refreshToken,
		Scope:        JoinScope(scopes),
	}
}
