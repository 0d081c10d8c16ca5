package oauth

import (
	"errors"
	"net/http"
)

// Error is an OAuth 2.0 protocol error (RFC 6749 §4.1.2.1, §5.2; OIDC Core
// §3.1.2.6). Build one with the constructors; each knows its HTTP status.
// Description is shown to the client, so it must never carry secrets or
// internal causes: those go in Cause, which is only logged.
type Error struct {
	Code        string
	Description string
	Status      int
	Cause       error // internal; logged, never sent
}

func (e *Error) Error() string {
	msg := e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Cause != nil {
		msg += " (" + e.Cause.Error() + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Cause }

func newError(code string, status int, desc string) *Error {
	return &Error{Code: code, Description: desc, Status: status}
}

// Error constructors. Codes and statuses per RFC 6749 §5.2 and §4.1.2.1,
// RFC 6750 §3.1 and OIDC Core §3.1.2.6.
func InvalidRequest(desc string) *Error {
	return newError("invalid_request", http.StatusBadRequest, desc)
}

// InvalidClient is answered with 401 and a WWW-Authenticate challenge.
func InvalidClient(desc string) *Error {
	return newError("invalid_client", http.StatusUnauthorized, desc)
}
func InvalidGrant(desc string) *Error { return newError("invalid_grant", http.StatusBadRequest, desc) }
func UnauthorizedClient(desc string) *Error {
	return newError("unauthorized_client", http.StatusBadRequest, desc)
}
func UnsupportedGrantType(desc string) *Error {
	return newError("unsupported_grant_type", http.StatusBadRequest, desc)
}
func UnsupportedResponseType(desc string) *Error {
	return newError("unsupported_response_type", http.StatusBadRequest, desc)
}
func InvalidScope(desc string) *Error { return newError("invalid_scope", http.StatusBadRequest, desc) }
func AccessDenied(desc string) *Error { return newError("access_denied", http.StatusForbidden, desc) }
func LoginRequired(desc string) *Error {
	return newError("login_required", http.StatusBadRequest, desc)
}
func ConsentRequired(desc string) *Error {
	return newError("consent_required", http.StatusBadRequest, desc)
}
func RequestNotSupported(desc string) *Error {
	return newError("request_not_supported", http.StatusBadRequest, desc)
}
func RequestURINotSupported(desc string) *Error {
	return newError("request_uri_not_supported", http.StatusBadRequest, desc)
}

// InvalidToken is the RFC 6750 §3.1 error for a bad bearer token.
func InvalidToken(desc string) *Error {
	return newError("invalid_token", http.StatusUnauthorized, desc)
}

// InsufficientScope is the RFC 6750 §3.1 error for a token lacking a scope.
func InsufficientScope(desc string) *Error {
	return newError("insufficient_scope", http.StatusForbidden, desc)
}

// ServerError hides cause from the client; the caller logs it.
func ServerError(cause error) *Error {
	return &Error{Code: "server_error", Description: "internal error", Status: http.StatusInternalServerError, Cause: cause}
}

// TemporarilyUnavailable is answered when a dependency (the database) is down.
func TemporarilyUnavailable(cause error) *Error {
	return &Error{Code: "temporarily_unavailable", Description: "try again later", Status: http.StatusServiceUnavailable, Cause: cause}
}

// AsError turns any error into an *Error: protocol errors pass through,
// anything else becomes server_error with the original as its cause.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	return ServerError(err)
}

// WireDescription makes a description safe to send: RFC 6749 §4.1.2.1 and
// §5.2 allow only %x20-21 / %x23-5B / %x5D-7E in error_description, so
// anything else becomes '?', and it is cut to 200 bytes. Descriptions are
// written by us, but this keeps a slip from becoming a header or JSON
// surprise for clients.
func WireDescription(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	return string(b)
}
