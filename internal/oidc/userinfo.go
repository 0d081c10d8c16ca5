package oidc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse-idp/gatehouse/internal/oauth"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// userinfoResponse is the UserInfo response (OIDC Core §5.3.2).
type userinfoResponse struct {
	Subject       string `json:"sub"`
	Name          string `json:"name,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
}

// HandleUserinfo is the UserInfo endpoint (OIDC Core §5.3), GET and POST.
// The access token must come in the Authorization header: tokens in the
// query string end up in logs and Referer headers (RFC 6750 §2.3, RFC
// 9700 §4.3.2), so they are refused, and so are form-body tokens.
func (p *Provider) HandleUserinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.URL.Query().Has("access_token") {
		writeBearerError(w, oauth.InvalidRequest("send the access token in the Authorization header, not the query string"))
		return
	}
	if r.Method == http.MethodPost {
		if form, e := parseForm(w, r); e == nil && form.Has("access_token") {
			writeBearerError(w, oauth.InvalidRequest("send the access token in the Authorization header"))
			return
		}
	}
	token, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		// RFC 6750 §3.1: a request without credentials gets the challenge
		// and no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	// Inspect checks revocation state in the database on every call, so a
	// revoked grant (a replayed code, a reused refresh token, a disabled
	// user, an ended session) ends access here at once, for JWT and
	// opaque tokens alike.
	info, e := p.deps.OAuth.ValidateBearer(r, token)
	if e != nil {
		if e.Status >= 500 {
			p.deps.Logger.ErrorContext(ctx, "userinfo failed", "error", e.Cause)
		}
		writeBearerError(w, e)
		return
	}
	if !oauth.HasScope(info.Scopes, "openid") || info.UserID == "" {
		writeBearerError(w, oauth.InsufficientScope("the openid scope is required"))
		return
	}
	user, err := p.deps.Store.GetUser(ctx, info.UserID)
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && user.Disabled):
		writeBearerError(w, oauth.InvalidToken("the user can no longer sign in"))
		return
	case err != nil:
		p.bearerUnavailable(w, r, err)
		return
	}
	scopes := info.Scopes
	resp := userinfoResponse{Subject: user.ID}
	addProfileClaims(&resp.Name, &resp.Email, &resp.EmailVerified, user, scopes)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	oauth.WriteJSON(w, http.StatusOK, resp)
}

// addProfileClaims fills the standard claims the scopes ask for (OIDC
// Core §5.4).
func addProfileClaims(name, email *string, emailVerified **bool, u storage.User, scopes []string) {
	if oauth.HasScope(scopes, "profile") {
		*name = u.Name
	}
	if oauth.HasScope(scopes, "email") {
		*email = u.Email
		v := u.EmailVerified
		*emailVerified = &v
	}
}

// bearerToken extracts the token of an "Authorization: Bearer" header
// (RFC 6750 §2.1; the scheme is case-insensitive).
func bearerToken(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// writeBearerError answers per RFC 6750 §3 with a WWW-Authenticate
// challenge naming the error.
func writeBearerError(w http.ResponseWriter, e *oauth.Error) {
	d := oauth.WireDescription(e.Description)
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="gatehouse", error=%q, error_description=%q`, e.Code, d))
	oauth.WriteJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": d})
}

func (p *Provider) bearerUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	p.deps.Logger.ErrorContext(r.Context(), "userinfo failed", "error", err)
	oauth.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
}
