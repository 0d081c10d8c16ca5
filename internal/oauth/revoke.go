package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// maxEndpointBody bounds revocation and introspection request bodies.
const maxEndpointBody = 64 << 10

// authenticatedForm reads a form POST and authenticates its client, as the
// token, revocation and introspection endpoints all require.
func (s *Server) authenticatedForm(w http.ResponseWriter, r *http.Request) (storage.Client, string, *Error) {
	if r.Method != http.MethodPost {
		return storage.Client{}, "", InvalidRequest("use POST")
	}
	if e := RequireForm(r); e != nil {
		return storage.Client{}, "", e
	}
	form, e := ParseFormBody(w, r, maxEndpointBody)
	if e != nil {
		return storage.Client{}, "", e
	}
	if e := singleParams(form, "token", "token_type_hint", "client_id", "client_secret"); e != nil {
		return storage.Client{}, "", e
	}
	creds, e := ParseClientCredentials(r.Header.Get("Authorization"), form)
	if e != nil {
		return storage.Client{}, "", e
	}
	client, e := AuthenticateClient(r.Context(), s.deps.Clients, creds)
	if e != nil {
		return storage.Client{}, "", e
	}
	token := form.Get("token")
	if token == "" {
		return storage.Client{}, "", InvalidRequest("token is missing")
	}
	return client, token, nil
}

// HandleRevoke is the revocation endpoint (RFC 7009). A refresh token's
// whole grant is revoked (its family, and every access token of it); an
// opaque access token is revoked at once; a JWT access token revokes its
// grant, or, for a machine token, is put on the revocation list that
// introspection checks. A token of another client, or an unknown one, is
// answered 200 and nothing changes (RFC 7009 §2.2). If the database cannot
// be reached the answer is 503: never a 200 that pretends a token was
// revoked.
func (s *Server) HandleRevoke(w http.ResponseWriter, r *http.Request) {
	client, token, e := s.authenticatedForm(w, r)
	if e != nil {
		WriteTokenError(w, r, s.deps.Logger, e)
		return
	}
	if err := s.Revoke(r.Context(), client, token); err != nil {
		WriteTokenError(w, r, s.deps.Logger, TemporarilyUnavailable(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// Revoke revokes token if it belongs to client. token_type_hint is not
// needed: the token's form says what it is, and RFC 7009 §2.1 lets the
// server search everywhere.
func (s *Server) Revoke(ctx context.Context, client storage.Client, token string) error {
	if len(token) > maxParamLen {
		return nil
	}
	now := s.deps.Now()
	if looksLikeJWT(token) {
		c, ok := s.verifyAccessJWT(token, now)
		if !ok || c.ClientID != client.ID {
			return nil // not ours to revoke, expired, or not a token at all
		}
		if g := c.GrantID(); g != "" {
			return s.revokeGrant(ctx, client, g, now, "access_token")
		}
		if err := s.deps.Store.RevokeJWT(ctx, c.ID, c.ExpiresAt.Time()); err != nil {
			return fmt.Errorf("revoke JWT: %w", err)
		}
		s.deps.Logger.InfoContext(ctx, "token revoked", slog.String("kind", "machine JWT"), slog.String("client_id", client.ID))
		s.deps.Audit.Record(ctx, storage.AuditEvent{
			Type: audit.TokenRevoked, Actor: audit.Client(client.ID), ClientID: client.ID,
			Details: map[string]any{"kind": "access_token", "format": "jwt", "jti": c.ID},
		})
		return nil
	}
	hash := secrets.Hash(token)
	at, err := s.deps.Store.GetAccessToken(ctx, hash)
	switch {
	case err == nil:
		if at.ClientID != client.ID {
			return nil
		}
		if err := s.deps.Store.RevokeAccessToken(ctx, hash, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("revoke access token: %w", err)
		}
		s.deps.Logger.InfoContext(ctx, "token revoked", slog.String("kind", "opaque access token"), slog.String("client_id", client.ID))
		e := storage.AuditEvent{
			Type: audit.TokenRevoked, Actor: audit.Client(client.ID), ClientID: client.ID,
			Details: map[string]any{"kind": "access_token", "format": "opaque"},
		}
		if at.GrantID != "" {
			e.UserID = at.Subject
			e.Details["grant_id"] = at.GrantID
			if g, err := s.deps.Store.GetGrant(ctx, at.GrantID); err == nil {
				e.SessionID = g.SessionID
			}
		}
		s.deps.Audit.Record(ctx, e)
		return nil
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("revoke: %w", err)
	}
	rt, err := s.deps.Store.GetRefreshToken(ctx, hash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("revoke: %w", err)
	case rt.ClientID != client.ID:
		return nil
	}
	return s.revokeGrant(ctx, client, rt.GrantID, now, "refresh_token")
}

// revokeGrant revokes a grant because a token of kind under it was
// revoked.
func (s *Server) revokeGrant(ctx context.Context, client storage.Client, grantID string, now time.Time, kind string) error {
	if err := s.deps.Store.RevokeGrant(ctx, grantID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("revoke grant: %w", err)
	}
	s.deps.Logger.InfoContext(ctx, "grant revoked", slog.String("client_id", client.ID), slog.String("grant_id", grantID))
	e := storage.AuditEvent{
		Type: audit.TokenRevoked, Actor: audit.Client(client.ID), ClientID: client.ID,
		Details: map[string]any{"kind": kind, "grant_id": grantID, "grant_revoked": true},
	}
	// The user and login session are the grant's. Revocation is not a
	// hot path; without the read the event still names the grant.
	if g, err := s.deps.Store.GetGrant(ctx, grantID); err == nil {
		e.UserID, e.SessionID = g.UserID, g.SessionID
	}
	s.deps.Audit.Record(ctx, e)
	return nil
}
