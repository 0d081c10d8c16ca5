package oauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// InvalidTarget is RFC 8707 §2's error for a resource the client may not
// ask for.
func InvalidTarget(desc string) *Error {
	return newError("invalid_target", http.StatusBadRequest, desc)
}

// isUserScope reports whether a scope only makes sense with a person
// behind the token.
func isUserScope(s string) bool {
	switch s {
	case "openid", "profile", "email", "offline_access":
		return true
	}
	return false
}

// clientCredentials runs the client_credentials grant (RFC 6749 §4.4): a
// machine token whose subject is the client itself. For a JWT client it
// touches no database at all — the client came from the cache and the
// token is signed in memory — so a replica keeps issuing machine tokens at
// full speed whatever the database is doing (DESIGN.md, "Scale").
func (s *Server) clientCredentials(ctx context.Context, client storage.Client, req TokenRequest) (*TokenResponse, *Error) {
	// RFC 6749 §4.4: "MUST only be used by confidential clients".
	if IsPublic(client) {
		return nil, UnauthorizedClient("public clients may not use the client_credentials grant")
	}
	var registered []string
	for _, sc := range parseScope(client.Metadata.Scope) {
		if !isUserScope(sc) {
			registered = append(registered, sc)
		}
	}
	scopes := registered // RFC 6749 §3.3: the default when none is asked for
	if requested := parseScope(req.Scope); len(requested) > 0 {
		scopes = requested
		for _, sc := range scopes {
			switch {
			case isUserScope(sc):
				return nil, InvalidScope("scope " + sc + " needs a signed-in person; machine tokens cannot carry it")
			case !validScopeToken(sc) || !HasScope(registered, sc):
				return nil, InvalidScope("a requested scope is not registered for this client")
			}
		}
	}
	audience, e := resourceAudience(client, req.Resources)
	if e != nil {
		return nil, e
	}
	now := s.deps.Now()
	at, row, err := s.issueAccessToken(client, accessToken{
		Subject: client.ID, ClientID: client.ID, Scopes: scopes, Audience: audience,
	}, now)
	if err != nil {
		return nil, ServerError(err)
	}
	if row != nil {
		// An opaque token exists only as its row: this write is the token.
		if err := s.deps.Store.CreateAccessToken(ctx, *row); err != nil {
			return nil, TemporarilyUnavailable(err)
		}
	}
	s.deps.Logger.DebugContext(ctx, "token issued",
		slog.String("grant_type", GrantClientCredentials), slog.String("client_id", client.ID))
	// Queued, not written: a JWT machine token still touches no database
	// on this goroutine.
	s.deps.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.TokenIssued, Actor: audit.Client(client.ID), ClientID: client.ID,
		Details: map[string]any{"grant_type": GrantClientCredentials, "scope": JoinScope(scopes)},
	})
	// RFC 6749 §4.4.3: no refresh token.
	return s.tokenResponse(at, "", scopes), nil
}

// resourceAudience checks RFC 8707 resource indicators against the ones
// the client registered, and returns the token's audience (nil: the
// server's default).
func resourceAudience(client storage.Client, resources []string) ([]string, *Error) {
	var aud []string
	for _, r := range resources {
		// RFC 8707 §2: an absolute URI without a fragment.
		u, err := url.Parse(r)
		if err != nil || !u.IsAbs() || strings.Contains(r, "#") {
			return nil, InvalidTarget("resource must be an absolute URI without a fragment")
		}
		if !containsString(client.Metadata.AllowedResources, r) {
			return nil, InvalidTarget("a requested resource is not allowed for this client")
		}
		if !containsString(aud, r) {
			aud = append(aud, r)
		}
	}
	return aud, nil
}
