package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestErrorConstructors(t *testing.T) {
	cause := errors.New("db down")
	tests := []struct {
		name       string
		err        *Error
		wantCode   string
		wantStatus int
	}{
		{"RFC 6749 §5.2 invalid_request", InvalidRequest("d"), "invalid_request", 400},
		{"RFC 6749 §5.2 invalid_client", InvalidClient("d"), "invalid_client", 401},
		{"RFC 6749 §5.2 invalid_grant", InvalidGrant("d"), "invalid_grant", 400},
		{"RFC 6749 §5.2 unauthorized_client", UnauthorizedClient("d"), "unauthorized_client", 400},
		{"RFC 6749 §5.2 unsupported_grant_type", UnsupportedGrantType("d"), "unsupported_grant_type", 400},
		{"RFC 6749 §5.2 invalid_scope", InvalidScope("d"), "invalid_scope", 400},
		{"RFC 6749 §4.1.2.1 unsupported_response_type", UnsupportedResponseType("d"), "unsupported_response_type", 400},
		{"RFC 6749 §4.1.2.1 access_denied", AccessDenied("d"), "access_denied", 403},
		{"RFC 6749 §4.1.2.1 server_error", ServerError(cause), "server_error", 500},
		{"RFC 6749 §4.1.2.1 temporarily_unavailable", TemporarilyUnavailable(cause), "temporarily_unavailable", 503},
		{"OIDC Core §3.1.2.6 login_required", LoginRequired("d"), "login_required", 400},
		{"OIDC Core §3.1.2.6 consent_required", ConsentRequired("d"), "consent_required", 400},
		{"OIDC Core §3.1.2.6 request_not_supported", RequestNotSupported("d"), "request_not_supported", 400},
		{"OIDC Core §3.1.2.6 request_uri_not_supported", RequestURINotSupported("d"), "request_uri_not_supported", 400},
		{"RFC 6750 §3.1 invalid_token", InvalidToken("d"), "invalid_token", 401},
		{"RFC 6750 §3.1 insufficient_scope", InsufficientScope("d"), "insufficient_scope", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err.Code != tt.wantCode || tt.err.Status != tt.wantStatus {
				t.Errorf("got %s (%d), want %s (%d)", tt.err.Code, tt.err.Status, tt.wantCode, tt.wantStatus)
			}
			if strings.Contains(tt.err.Description, "db down") {
				t.Errorf("description %q carries the cause", tt.err.Description)
			}
		})
	}
	t.Run("constructors return distinct values", func(t *testing.T) {
		a, b := InvalidGrant("a"), InvalidGrant("a")
		if a == b {
			t.Fatal("two InvalidGrant calls share one *Error")
		}
		a.Description = "changed"
		if InvalidGrant("a").Description != "a" {
			t.Fatal("mutating one error changed another")
		}
	})
}

func TestErrorErrorAndUnwrap(t *testing.T) {
	cause := fmt.Errorf("query: %w", context.DeadlineExceeded)
	tests := []struct {
		name      string
		err       *Error
		wantText  string
		wantCause error
	}{
		{"code only", &Error{Code: "invalid_request"}, "invalid_request", nil},
		{"code and description", InvalidGrant("code expired"), "invalid_grant: code expired", nil},
		{"cause is in the log text", ServerError(cause), "server_error: internal error (query: context deadline exceeded)", context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantText {
				t.Errorf("Error() = %q, want %q", got, tt.wantText)
			}
			if tt.wantCause != nil && !errors.Is(tt.err, tt.wantCause) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.wantCause)
			}
			if tt.wantCause == nil && errors.Unwrap(tt.err) != nil {
				t.Errorf("Unwrap = %v, want nil", errors.Unwrap(tt.err))
			}
		})
	}
}

func TestAsError(t *testing.T) {
	t.Run("nil is nil", func(t *testing.T) {
		if got := AsError(nil); got != nil {
			t.Errorf("AsError(nil) = %v, want nil", got)
		}
	})
	grant := InvalidGrant("code expired")
	tests := []struct {
		name      string
		in        error
		want      *Error // pointer identity when set
		wantCode  string
		wantCause error
	}{
		{"*Error passes through", grant, grant, "invalid_grant", nil},
		{"wrapped *Error passes through", fmt.Errorf("token: %w", grant), grant, "invalid_grant", nil},
		{"other error becomes server_error", errors.New("pq: relation \"secrets\" does not exist"), nil, "server_error", nil},
		{"context error becomes server_error", fmt.Errorf("x: %w", context.Canceled), nil, "server_error", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsError(tt.in)
			if got == nil {
				t.Fatal("AsError returned nil")
			}
			if tt.want != nil && got != tt.want {
				t.Errorf("AsError = %p, want the same *Error %p", got, tt.want)
			}
			if got.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", got.Code, tt.wantCode)
			}
			if tt.want == nil {
				if got.Status != http.StatusInternalServerError {
					t.Errorf("status = %d, want 500", got.Status)
				}
				if !errors.Is(got, tt.in) {
					t.Errorf("cause %v not kept", tt.in)
				}
				if got.Description != "internal error" || strings.Contains(got.Description, tt.in.Error()) {
					t.Errorf("description %q leaks or changed", got.Description)
				}
			}
			if tt.wantCause != nil && !errors.Is(got, tt.wantCause) {
				t.Errorf("errors.Is(%v, %v) = false", got, tt.wantCause)
			}
		})
	}
}

func TestWriteTokenError(t *testing.T) {
	const secretCause = "pq: password authentication failed for user \"gatehouse\" password=hunter2"
	tests := []struct {
		name       string
		err        *Error
		wantStatus int
		wantBody   map[string]string
		wantWWW    bool
		wantLogged bool
	}{
		{
			name: "RFC 6749 §5.2 invalid_client is 401 with WWW-Authenticate", err: InvalidClient("client authentication failed"),
			wantStatus: 401, wantWWW: true,
			wantBody: map[string]string{"error": "invalid_client", "error_description": "client authentication failed"},
		},
		{
			name: "RFC 6749 §5.2 invalid_grant is 400", err: InvalidGrant("the authorization code has expired"),
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_grant", "error_description": "the authorization code has expired"},
		},
		{
			name: "RFC 6749 §5.2 invalid_request is 400", err: InvalidRequest("parameter code is repeated"),
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_request", "error_description": "parameter code is repeated"},
		},
		{
			name: "RFC 6749 §5.2 empty description omitted", err: &Error{Code: "invalid_grant", Status: 400},
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_grant"},
		},
		{
			name: "server_error never sends its cause", err: ServerError(errors.New(secretCause)),
			wantStatus: 500, wantLogged: true,
			wantBody: map[string]string{"error": "server_error", "error_description": "internal error"},
		},
		{
			name: "temporarily_unavailable never sends its cause", err: TemporarilyUnavailable(errors.New(secretCause)),
			wantStatus: 503, wantLogged: true,
			wantBody: map[string]string{"error": "temporarily_unavailable", "error_description": "try again later"},
		},
		{
			name: "a cause on a 4xx error is not sent either", err: &Error{Code: "invalid_grant", Description: "bad code", Status: 400, Cause: errors.New(secretCause)},
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_grant", "error_description": "bad code"},
		},
		{
			name: "RFC 6749 §5.2 description restricted to its character set", err: InvalidRequest("bad \"value\"\\ é\r\nX-Injected: 1"),
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_request", "error_description": "bad ?value?? ??" + "??X-Injected: 1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			w := httptest.NewRecorder()
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/token", nil)
			WriteTokenError(w, r, logger, tt.err)

			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			h := w.Header()
			// RFC 6749 §5.1/§5.2: JSON, never cached.
			if got := h.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := h.Get("Pragma"); got != "no-cache" {
				t.Errorf("Pragma = %q, want no-cache", got)
			}
			if got := h.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			www := h.Get("WWW-Authenticate")
			if tt.wantWWW && !strings.HasPrefix(www, "Basic ") {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", www)
			}
			if !tt.wantWWW && www != "" {
				t.Errorf("WWW-Authenticate = %q on %s", www, tt.err.Code)
			}
			raw := w.Body.String()
			var body map[string]string
			if err := json.Unmarshal([]byte(raw), &body); err != nil {
				t.Fatalf("body %q is not a JSON object of strings: %v", raw, err)
			}
			if fmt.Sprint(body) != fmt.Sprint(tt.wantBody) {
				t.Errorf("body = %v, want %v", body, tt.wantBody)
			}
			for _, leak := range []string{"hunter2", "pq:", "password"} {
				if strings.Contains(raw, leak) {
					t.Errorf("body %q leaks %q", raw, leak)
				}
			}
			if logged := strings.Contains(logs.String(), "hunter2"); logged != tt.wantLogged {
				t.Errorf("cause logged = %v, want %v (log %q)", logged, tt.wantLogged, logs.String())
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, TokenResponse{AccessToken: "at", TokenType: "Bearer", ExpiresIn: 600, Scope: "openid"})
	if w.Code != http.StatusOK {
		t.Errorf("status = %d", w.Code)
	}
	// RFC 6749 §5.1: responses with tokens MUST have Cache-Control:
	// no-store.
	for k, want := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache", "Content-Type": "application/json"} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 600.0, "scope": "openid"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("body = %v, want %v (id_token must be omitted when empty)", got, want)
	}
}

func TestWireDescription(t *testing.T) {
	// RFC 6749 §4.1.2.1 and §5.2: error_description is %x20-21 / %x23-5B
	// / %x5D-7E.
	long := strings.Repeat("d", 300)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"allowed characters kept", "redirect_uri is missing; see RFC 6749 [3.1.2] ~!#$%&'()*+,-./:;<=>?@^_`{|}", "redirect_uri is missing; see RFC 6749 [3.1.2] ~!#$%&'()*+,-./:;<=>?@^_`{|}"},
		{"double quote %x22", `scope "x"`, "scope ?x?"},
		{"backslash %x5C", `a\b`, "a?b"},
		{"control characters", "a\r\nb\tc\x00", "a??b?c?"},
		{"DEL %x7F", "a\x7f", "a?"},
		{"non-ASCII: one ? per byte", "é", "??"},
		{"invalid UTF-8", "\xff", "?"},
		{"exactly 200 bytes kept", long[:200], long[:200]},
		{"cut to 200 bytes", long, long[:200]},
		{"cut before sanitizing a multi-byte character", long[:199] + "é", long[:199] + "?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WireDescription(tt.in)
			if got != tt.want {
				t.Errorf("WireDescription(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if WireDescription(got) != got {
				t.Errorf("WireDescription is not idempotent on %q", got)
			}
		})
	}
}
