package oauth

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Prompt values (OIDC Core §3.1.2.1).
const (
	PromptNone    = "none"
	PromptLogin   = "login"
	PromptConsent = "consent"
)

// AuthorizeRequest is a validated authorization request (RFC 6749 §4.1.1,
// OIDC Core §3.1.2.1).
type AuthorizeRequest struct {
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *int
	LoginHint           string
	UILocales           string
}

// HasPrompt reports whether the request carries prompt value p.
func (r *AuthorizeRequest) HasPrompt(p string) bool { return HasScope(r.Prompt, p) }

var authorizeParams = []string{
	"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state",
	"nonce", "code_challenge", "code_challenge_method", "prompt", "max_age",
	"login_hint", "ui_locales", "request", "request_uri", "display", "id_token_hint",
	"claims", "acr_values",
}

// ResolveClient performs the checks of an authorization request whose
// failure must not be sent to the redirect URI: RFC 6749 §4.1.2.1 says that
// if the client is unknown or the redirect URI is missing, invalid or not
// registered, the server MUST NOT redirect and informs the person instead.
// It returns the client and the redirect URI to use.
func ResolveClient(ctx context.Context, clients ClientGetter, v url.Values) (storage.Client, string, *Error) {
	if err := singleParams(v, "client_id", "redirect_uri"); err != nil {
		return storage.Client{}, "", err
	}
	id := v.Get("client_id")
	if id == "" {
		return storage.Client{}, "", InvalidRequest("client_id is missing")
	}
	c, err := clients.GetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, "", InvalidClient("unknown client")
	}
	if err != nil {
		return storage.Client{}, "", TemporarilyUnavailable(err)
	}
	// OIDC Core §3.1.2.1 makes redirect_uri REQUIRED; OAuth 2.1 drops the
	// single-registered-URI shortcut. Requiring it removes a class of
	// mix-ups between registered URIs.
	ru := v.Get("redirect_uri")
	if ru == "" {
		return storage.Client{}, "", InvalidRequest("redirect_uri is missing")
	}
	if !MatchRedirectURI(c.Metadata.RedirectURIs, ru, c.Metadata.ApplicationType == "native") {
		return storage.Client{}, "", InvalidRequest("redirect_uri is not registered for this client")
	}
	return c, ru, nil
}

// ParseAuthorizeRequest validates everything else in the request. Errors
// from here are redirected to redirectURI (with state and iss). A client
// may ask for the scopes it registered (API scopes included), or for
// defaultScopes if it registered none.
func ParseAuthorizeRequest(v url.Values, c storage.Client, redirectURI string, defaultScopes []string) (*AuthorizeRequest, *Error) {
	if err := singleParams(v, authorizeParams...); err != nil {
		return nil, err
	}
	// OIDC Core §6: request objects are optional; say so precisely.
	if v.Has("request") {
		return nil, RequestNotSupported("request objects are not supported")
	}
	if v.Has("request_uri") {
		return nil, RequestURINotSupported("request_uri is not supported")
	}
	req := &AuthorizeRequest{
		ClientID:    c.ID,
		RedirectURI: redirectURI,
		State:       v.Get("state"),
		Nonce:       v.Get("nonce"),
		LoginHint:   v.Get("login_hint"),
		UILocales:   v.Get("ui_locales"),
	}
	switch v.Get("response_type") {
	case "code":
	case "":
		return nil, InvalidRequest("response_type is missing")
	default:
		return nil, UnsupportedResponseType("response_type is not supported; use code")
	}
	if !containsString(c.Metadata.ResponseTypes, "code") || !containsString(c.Metadata.GrantTypes, "authorization_code") {
		return nil, UnauthorizedClient("client is not registered for the authorization code flow")
	}
	switch v.Get("response_mode") {
	case "", "query":
	default:
		return nil, InvalidRequest("response_mode is not supported; use query")
	}

	scopes := parseScope(v.Get("scope"))
	if len(scopes) == 0 {
		return nil, InvalidScope("scope is missing")
	}
	allowed := defaultScopes
	if c.Metadata.Scope != "" {
		allowed = parseScope(c.Metadata.Scope)
	}
	for _, s := range scopes {
		if !validScopeToken(s) {
			return nil, InvalidScope("scope contains invalid characters")
		}
		if !HasScope(allowed, s) {
			// s is a valid scope-token, so it is safe in error_description
			// (RFC 6749 §4.1.2.1 restricts its characters); long ones are
			// not repeated back.
			if len(s) > 64 {
				return nil, InvalidScope("a requested scope is not allowed for this client")
			}
			return nil, InvalidScope("scope " + s + " is not allowed for this client")
		}
	}
	req.Scopes = scopes

	// PKCE (RFC 7636, RFC 9700 §2.1.1): required for public clients,
	// honoured for all, S256 only.
	req.CodeChallenge = v.Get("code_challenge")
	req.CodeChallengeMethod = v.Get("code_challenge_method")
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return nil, InvalidRequest("code_challenge_method without code_challenge")
	case req.CodeChallenge == "" && IsPublic(c):
		return nil, InvalidRequest("PKCE is required for public clients: send code_challenge with code_challenge_method=S256")
	case req.CodeChallenge != "":
		// RFC 7636 §4.3: an absent method means plain, which is refused.
		if req.CodeChallengeMethod != PKCES256 {
			return nil, InvalidRequest("code_challenge_method must be S256")
		}
		if !validS256Challenge(req.CodeChallenge) {
			return nil, InvalidRequest("code_challenge is not a valid S256 challenge")
		}
	}

	prompts := parseScope(strings.Join(strings.Fields(v.Get("prompt")), " ")) // split, deduplicated
	// OIDC Core §3.1.2.1: none with any other value is an error, whether
	// or not we know the other value.
	if containsString(prompts, PromptNone) && len(prompts) > 1 {
		return nil, InvalidRequest("prompt=none cannot be combined with other prompt values")
	}
	for _, p := range prompts {
		switch p {
		case PromptNone, PromptLogin, PromptConsent:
			if !HasScope(req.Prompt, p) {
				req.Prompt = append(req.Prompt, p)
			}
		default:
			// OIDC Core §3.1.2.1 defines select_account too; with one
			// account per browser there is nothing to select, and unknown
			// values are ignored so newer clients keep working.
		}
	}
	if ma := v.Get("max_age"); ma != "" {
		n, ok := parseMaxAge(ma)
		if !ok {
			return nil, InvalidRequest("max_age must be a non-negative integer")
		}
		req.MaxAge = &n
	}
	return req, nil
}

// maxMaxAge caps max_age at about 68 years: longer means "no limit", and a
// cap keeps max_age*time.Second from overflowing.
const maxMaxAge = 1<<31 - 1

// parseMaxAge accepts decimal digits only (no sign, no spaces), per OIDC
// Core §3.1.2.1's "non-negative integer".
func parseMaxAge(s string) (int, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	// With digits only, ParseInt can fail only by overflowing.
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxMaxAge {
		return maxMaxAge, true
	}
	return int(n), true
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CodeRedirectURL builds the successful authorization response (RFC 6749
// §4.1.2) with the iss parameter of RFC 9207.
func CodeRedirectURL(redirectURI, code, state, issuer string) string {
	q := url.Values{"code": {code}, "iss": {issuer}}
	if state != "" {
		q.Set("state", state)
	}
	return appendQuery(redirectURI, q)
}

// ErrorRedirectURL builds an error authorization response (RFC 6749
// §4.1.2.1, RFC 9207). Only call it for a redirect URI ResolveClient
// accepted.
func ErrorRedirectURL(redirectURI string, e *Error, state, issuer string) string {
	q := url.Values{"error": {e.Code}, "iss": {issuer}}
	if d := WireDescription(e.Description); d != "" {
		q.Set("error_description", d)
	}
	if state != "" {
		q.Set("state", state)
	}
	return appendQuery(redirectURI, q)
}

// appendQuery adds q to uri, keeping the registered URI's own query exactly
// as registered (RFC 6749 §3.1.2: it MUST be retained).
func appendQuery(uri string, q url.Values) string {
	sep := "?"
	switch {
	case strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&"):
		sep = ""
	case strings.Contains(uri, "?"):
		sep = "&"
	}
	return uri + sep + q.Encode()
}
