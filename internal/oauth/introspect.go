package oauth

import (
	"mime"
	"net/http"
)

// introspection is an RFC 7662 §2.2 response. An inactive token is
// answered with {"active": false} and nothing else.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	ExpiresAt int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	JTI       string   `json:"jti,omitempty"`
}

// HandleIntrospect is the introspection endpoint (RFC 7662). Callers are
// confidential clients (resource servers): RFC 7662 §2.1 requires the
// caller to authenticate, and a public client cannot. Any such caller may
// introspect access tokens; a refresh token is described only to the
// client it was issued to (RFC 7662 §4 lets the server limit what it
// reveals). If the database cannot be reached the answer is 503, never a
// guess.
func (s *Server) HandleIntrospect(w http.ResponseWriter, r *http.Request) {
	client, token, e := s.authenticatedForm(w, r)
	if e != nil {
		WriteTokenError(w, r, s.deps.Logger, e)
		return
	}
	if IsPublic(client) {
		WriteTokenError(w, r, s.deps.Logger, InvalidClient("introspection needs a confidential client"))
		return
	}
	info, err := s.Inspect(r.Context(), token)
	if err != nil {
		WriteTokenError(w, r, s.deps.Logger, TemporarilyUnavailable(err))
		return
	}
	if !info.Active || (info.Kind == KindRefresh && info.ClientID != client.ID) {
		WriteJSON(w, http.StatusOK, introspection{Active: false})
		return
	}
	resp := introspection{
		Active:    true,
		Scope:     JoinScope(info.Scopes),
		ClientID:  info.ClientID,
		Subject:   info.Subject,
		Audience:  info.Audience,
		Issuer:    s.cfg.Issuer,
		TokenType: "Bearer",
		ExpiresAt: info.ExpiresAt.Unix(),
		IssuedAt:  info.IssuedAt.Unix(),
		JTI:       info.JTI,
	}
	if info.Kind == KindRefresh {
		resp.TokenType = "refresh_token"
	}
	WriteJSON(w, http.StatusOK, resp)
}

// ValidateBearer checks an access token presented to this server as a
// resource (userinfo): active, an access token rather than a refresh
// token, and meant for this server's default audience. The error is
// invalid_token (401) or temporarily_unavailable (503).
func (s *Server) ValidateBearer(r *http.Request, token string) (TokenInfo, *Error) {
	info, err := s.Inspect(r.Context(), token)
	if err != nil {
		return TokenInfo{}, TemporarilyUnavailable(err)
	}
	if !info.Active || info.Kind == KindRefresh {
		return TokenInfo{}, InvalidToken("the access token is invalid, expired or revoked")
	}
	if !containsString(info.Audience, s.cfg.AccessTokenAudience) {
		return TokenInfo{}, InvalidToken("the access token is not meant for this resource")
	}
	return info, nil
}

// RequireForm checks the content type of a form POST.
func RequireForm(r *http.Request) *Error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return InvalidRequest("content type must be application/x-www-form-urlencoded")
	}
	return nil
}
