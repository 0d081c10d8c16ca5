package oauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// maxTokenRequestBody bounds a token request body. Real requests are a few
// hundred bytes.
const maxTokenRequestBody = 64 << 10

// Grant types (RFC 6749 §4.1.3, §4.4, §6).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// TokenRequest is a parsed token endpoint request (RFC 6749 §4.1.3, §4.4,
// §6; RFC 8707 §2.2).
type TokenRequest struct {
	Credentials  ClientCredentials
	GrantType    string
	Code         string
	RedirectURI  string
	CodeVerifier string
	RefreshToken string
	Scope        string
	Resources    []string // RFC 8707: may repeat
}

// LogValue keeps codes, verifiers and secrets out of logs.
func (r TokenRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("grant_type", r.GrantType), slog.Any("client", r.Credentials))
}

// TokenResponse is a successful token response (RFC 6749 §5.1, OIDC Core
// §3.1.3.3).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// ParseTokenRequest reads a token request from r. Parameters come from the
// form-encoded body only (RFC 6749 §4.1.3); query parameters are ignored,
// so credentials in a URL never count.
func ParseTokenRequest(w http.ResponseWriter, r *http.Request) (TokenRequest, *Error) {
	if r.Method != http.MethodPost {
		return TokenRequest{}, InvalidRequest("the token endpoint accepts POST only")
	}
	if e := RequireForm(r); e != nil {
		return TokenRequest{}, e
	}
	form, e := ParseFormBody(w, r, maxTokenRequestBody)
	if e != nil {
		return TokenRequest{}, e
	}
	// resource is absent from the list: RFC 8707 §2 lets it repeat.
	if e := singleParams(form, "grant_type", "code", "redirect_uri", "code_verifier",
		"client_id", "client_secret", "scope", "refresh_token"); e != nil {
		return TokenRequest{}, e
	}
	for _, r := range form["resource"] {
		if len(r) > maxParamLen {
			return TokenRequest{}, InvalidRequest("parameter resource is too long")
		}
	}
	creds, e := ParseClientCredentials(r.Header.Get("Authorization"), form)
	if e != nil {
		return TokenRequest{}, e
	}
	return TokenRequest{
		Credentials:  creds,
		GrantType:    form.Get("grant_type"),
		Code:         form.Get("code"),
		RedirectURI:  form.Get("redirect_uri"),
		CodeVerifier: form.Get("code_verifier"),
		RefreshToken: form.Get("refresh_token"),
		Scope:        form.Get("scope"),
		Resources:    form["resource"],
	}, nil
}

// Token runs a token request: authenticate the client, then the grant.
func (s *Server) Token(ctx context.Context, req TokenRequest) (*TokenResponse, *Error) {
	client, e := AuthenticateClient(ctx, s.deps.Clients, req.Credentials)
	if e != nil {
		return nil, e
	}
	switch req.GrantType {
	case "":
		return nil, InvalidRequest("grant_type is missing")
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
		if !containsString(client.Metadata.GrantTypes, req.GrantType) {
			return nil, UnauthorizedClient("client may not use the " + req.GrantType + " grant")
		}
	}
	switch req.GrantType {
	case GrantAuthorizationCode:
		return s.exchangeCode(ctx, client, req)
	case GrantRefreshToken:
		return s.refresh(ctx, client, req)
	case GrantClientCredentials:
		return s.clientCredentials(ctx, client, req)
	default:
		return nil, UnsupportedGrantType("grant_type is not supported")
	}
}

// exchangeCode redeems an authorization code (RFC 6749 §4.1.3).
//
// The order of checks matters: everything that proves the caller is the
// rightful holder (client, redirect URI, PKCE verifier) is checked before a
// second use counts as a replay, so an attacker who only saw the code
// cannot use a replay to revoke the victim's tokens.
func (s *Server) exchangeCode(ctx context.Context, client storage.Client, req TokenRequest) (*TokenResponse, *Error) {
	if req.Code == "" {
		return nil, InvalidRequest("code is missing")
	}
	hash := secrets.Hash(req.Code)
	code, err := s.deps.Store.GetAuthCode(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, InvalidGrant("the authorization code is invalid")
	}
	if err != nil {
		return nil, TemporarilyUnavailable(err)
	}
	// RFC 6749 §4.1.3: the code was issued to the authenticated client.
	if code.ClientID != client.ID {
		return nil, InvalidGrant("the authorization code is invalid")
	}
	// RFC 6749 §4.1.3: redirect_uri must be identical to the one in the
	// authorization request.
	if req.RedirectURI != code.RedirectURI {
		return nil, InvalidGrant("redirect_uri does not match the authorization request")
	}
	if e := checkPKCE(code, req.CodeVerifier); e != nil {
		return nil, e
	}
	// RFC 8707 §2.2: resource at the token endpoint picks the access
	// token's audience among those the client may ask for.
	audience, e := resourceAudience(client, req.Resources)
	if e != nil {
		return nil, e
	}
	now := s.deps.Now()
	if code.UsedAt != nil {
		return nil, s.replayed(ctx, code, now)
	}
	if !now.Before(code.ExpiresAt) {
		return nil, InvalidGrant("the authorization code has expired")
	}
	user, err := s.deps.Store.GetUser(ctx, code.UserID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled) {
		return nil, InvalidGrant("the user can no longer sign in")
	}
	if err != nil {
		return nil, TemporarilyUnavailable(err)
	}
	// The code was issued in a login session. If that session has ended
	// since (a password change, a forced logout), the code ends with it:
	// otherwise a code issued a moment before the password was changed
	// would still yield a fresh grant afterwards.
	if code.SessionID != "" {
		alive, err := s.deps.Sessions.Alive(ctx, code.SessionID, false)
		if err != nil {
			return nil, TemporarilyUnavailable(err)
		}
		if !alive {
			return nil, InvalidGrant("the sign-in the code was issued for has ended")
		}
	}
	// The grant, and with it every token, is bound to the login session
	// unless the person granted offline_access (OIDC Core §11).
	g := storage.Grant{
		ID:        code.GrantID,
		UserID:    code.UserID,
		ClientID:  code.ClientID,
		SessionID: code.SessionID,
		// offline_access is about refresh tokens: a client that cannot
		// refresh gets a session-bound grant whatever it asked for.
		Offline: HasScope(code.Scopes, "offline_access") &&
			containsString(client.Metadata.GrantTypes, GrantRefreshToken),
		Scopes:    code.Scopes,
		CreatedAt: now,
	}
	// Tokens are made before the code is consumed: if signing fails the
	// client can simply retry, instead of its retry counting as a replay.
	// Signing also happens outside any database call, so no connection is
	// held while we compute signatures (DESIGN.md, "Scale").
	resp, issued, e := s.mintTokens(ctx, client, user, code, g, audience, now)
	if e != nil {
		return nil, e
	}
	if _, err := s.deps.Store.RedeemAuthCode(ctx, hash, now, g, issued); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			// Lost a race with another redemption of the same code.
			return nil, s.replayed(ctx, code, now)
		}
		if errors.Is(err, storage.ErrNotFound) {
			return nil, InvalidGrant("the authorization code is invalid")
		}
		return nil, TemporarilyUnavailable(err)
	}
	s.deps.Logger.InfoContext(ctx, "token issued",
		slog.String("grant_type", GrantAuthorizationCode), slog.String("client_id", client.ID),
		slog.String("user_id", code.UserID), slog.String("grant_id", code.GrantID))
	s.deps.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.TokenIssued, Actor: audit.Client(client.ID),
		UserID: code.UserID, ClientID: client.ID, SessionID: code.SessionID,
		Details: map[string]any{
			"grant_type": GrantAuthorizationCode, "grant_id": g.ID, "scope": JoinScope(code.Scopes),
			"refresh_token": issued.RefreshToken != nil, "offline": g.Offline,
		},
	})
	return resp, nil
}

// mintTokens makes the tokens a redeemed code yields: the access token,
// a refresh token when the client may refresh, and an ID token for openid
// requests. The stored ones (refresh, opaque access) come back in issued,
// to be written with the redemption.
func (s *Server) mintTokens(ctx context.Context, client storage.Client, user storage.User, code storage.AuthCode, g storage.Grant, audience []string, now time.Time) (*TokenResponse, storage.IssuedTokens, *Error) {
	var issued storage.IssuedTokens
	at, atRow, err := s.issueAccessToken(client, accessToken{
		Subject: code.UserID, ClientID: client.ID, GrantID: g.ID, Scopes: code.Scopes, Audience: audience, AuthTime: code.AuthTime,
	}, now)
	if err != nil {
		return nil, issued, ServerError(err)
	}
	issued.AccessToken = atRow
	var refresh string
	if containsString(client.Metadata.GrantTypes, GrantRefreshToken) {
		refresh, issued.RefreshToken, err = s.newRefreshToken(client, g, now)
		if err != nil {
			return nil, issued, ServerError(err)
		}
	}
	resp := s.tokenResponse(at, refresh, code.Scopes)
	if HasScope(code.Scopes, "openid") {
		idt, err := s.deps.IDTokens.MintIDToken(ctx, IDTokenRequest{
			Client:      client,
			User:        user,
			SessionID:   code.SessionID,
			Nonce:       code.Nonce,
			AuthTime:    code.AuthTime,
			AMR:         code.AMR,
			Scopes:      code.Scopes,
			AccessToken: at,
		})
		if err != nil {
			return nil, issued, ServerError(err)
		}
		resp.IDToken = idt
	}
	return resp, issued, nil
}

// checkPKCE enforces RFC 7636 §4.6 and the downgrade defence of RFC 9700
// §4.8.2: a verifier sent for a code issued without a challenge fails.
func checkPKCE(code storage.AuthCode, verifier string) *Error {
	if code.CodeChallenge == "" {
		if verifier != "" {
			return InvalidGrant("code_verifier sent but the authorization request had no code_challenge")
		}
		return nil
	}
	if verifier == "" {
		return InvalidGrant("code_verifier is missing")
	}
	if !validVerifier(verifier) || !verifyS256(verifier, code.CodeChallenge) {
		return InvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}

// replayed handles a second use of a code. RFC 6749 §4.1.2: the server
// MUST deny it and SHOULD revoke all tokens issued from it; RFC 9700
// §4.5 explains why (a leaked code used by an attacker after the client).
func (s *Server) replayed(ctx context.Context, code storage.AuthCode, now time.Time) *Error {
	if err := s.deps.Store.RevokeGrant(ctx, code.GrantID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
		// The request still fails; the failure to revoke must be seen.
		s.deps.Logger.ErrorContext(ctx, "revoke grant after code replay", slog.String("grant_id", code.GrantID), slog.Any("error", err))
		return TemporarilyUnavailable(err)
	}
	s.deps.Logger.WarnContext(ctx, "authorization code replayed; grant revoked",
		slog.String("client_id", code.ClientID), slog.String("grant_id", code.GrantID))
	s.deps.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.CodeReplayed, Actor: audit.Client(code.ClientID),
		UserID: code.UserID, ClientID: code.ClientID, SessionID: code.SessionID,
		Details: map[string]any{"grant_id": code.GrantID, "grant_revoked": true},
	})
	return InvalidGrant("the authorization code has already been used")
}

// HandleToken is the token endpoint.
func (s *Server) HandleToken(w http.ResponseWriter, r *http.Request) {
	req, e := ParseTokenRequest(w, r)
	if e != nil {
		WriteTokenError(w, r, s.deps.Logger, e)
		return
	}
	resp, e := s.Token(r.Context(), req)
	if e != nil {
		WriteTokenError(w, r, s.deps.Logger, e)
		return
	}
	WriteJSON(w, http.StatusOK, resp)
}
