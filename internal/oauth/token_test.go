package oauth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestParseTokenRequest(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	const limit = 64 << 10 // the 64 KiB the token endpoint promises, not the constant under test
	const body = "grant_type=authorization_code&code=c0de&redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_verifier=" + rfc7636Verifier
	// padTo returns a valid body of exactly n bytes.
	padTo := func(n int) string {
		b := body + "&client_id=web&pad="
		return b + strings.Repeat("p", n-len(b))
	}
	tests := []struct {
		name        string
		method      string
		target      string // default /token
		contentType string
		auth        string
		body        string
		bodyReader  io.Reader // overrides body
		want        TokenRequest
		wantCode    string
		wantStatus  int
	}{
		{
			name: "RFC 6749 §4.1.3 with client_secret_basic", method: "POST", contentType: form,
			auth: basic("web", "s3cret"), body: body,
			want: TokenRequest{
				Credentials: ClientCredentials{ID: "web", Secret: "s3cret", Method: AuthSecretBasic},
				GrantType:   "authorization_code", Code: "c0de", RedirectURI: "https://client.example/cb", CodeVerifier: rfc7636Verifier,
			},
		},
		{
			name: "RFC 6749 §2.3.1 client_secret_post", method: "POST", contentType: form,
			body: body + "&client_id=web&client_secret=s3cret",
			want: TokenRequest{
				Credentials: ClientCredentials{ID: "web", Secret: "s3cret", Method: AuthSecretPost},
				GrantType:   "authorization_code", Code: "c0de", RedirectURI: "https://client.example/cb", CodeVerifier: rfc7636Verifier,
			},
		},
		{
			name: "RFC 8252 §8.4 public client", method: "POST", contentType: form + "; charset=UTF-8",
			body: body + "&client_id=app",
			want: TokenRequest{
				Credentials: ClientCredentials{ID: "app", Method: AuthNone},
				GrantType:   "authorization_code", Code: "c0de", RedirectURI: "https://client.example/cb", CodeVerifier: rfc7636Verifier,
			},
		},
		{
			name: "media type is case-insensitive", method: "POST", contentType: "Application/X-WWW-Form-URLEncoded",
			body: "grant_type=authorization_code&client_id=app",
			want: TokenRequest{Credentials: ClientCredentials{ID: "app", Method: AuthNone}, GrantType: "authorization_code"},
		},
		{
			name: "RFC 6749 §3.2 query parameters ignored", method: "POST", contentType: form,
			target: "/token?code=from-query&client_secret=leaked&grant_type=refresh_token&code_verifier=x&redirect_uri=y",
			body:   "grant_type=authorization_code&client_id=app",
			want:   TokenRequest{Credentials: ClientCredentials{ID: "app", Method: AuthNone}, GrantType: "authorization_code"},
		},
		{
			name: "RFC 6749 §3.2 query parameter does not make a body parameter repeated", method: "POST", contentType: form,
			target: "/token?code=other",
			body:   "grant_type=authorization_code&code=c0de&client_id=app",
			want:   TokenRequest{Credentials: ClientCredentials{ID: "app", Method: AuthNone}, GrantType: "authorization_code", Code: "c0de"},
		},
		{
			name: "malformed query string ignored like any query parameter", method: "POST", contentType: form,
			target: "/token?a=%zz;b",
			body:   "grant_type=authorization_code&client_id=app",
			want:   TokenRequest{Credentials: ClientCredentials{ID: "app", Method: AuthNone}, GrantType: "authorization_code"},
		},
		{
			name: "unknown parameters ignored, even repeated", method: "POST", contentType: form,
			body: "grant_type=authorization_code&client_id=app&foo=1&foo=2",
			want: TokenRequest{Credentials: ClientCredentials{ID: "app", Method: AuthNone}, GrantType: "authorization_code"},
		},
		{
			name: "body of exactly 64 KiB", method: "POST", contentType: form, body: padTo(limit),
			want: TokenRequest{
				Credentials: ClientCredentials{ID: "web", Method: AuthNone},
				GrantType:   "authorization_code", Code: "c0de", RedirectURI: "https://client.example/cb", CodeVerifier: rfc7636Verifier,
			},
		},

		{
			name: "RFC 6749 §6 refresh_token with scope", method: "POST", contentType: form,
			body: "grant_type=refresh_token&refresh_token=r3fresh&scope=openid+profile&client_id=app",
			want: TokenRequest{Credentials: ClientCredentials{ID: "app", Method: AuthNone}, GrantType: "refresh_token", RefreshToken: "r3fresh", Scope: "openid profile"},
		},
		{
			name: "RFC 8707 §2 resource may repeat", method: "POST", contentType: form, auth: basic("svc", "s3cret"),
			body: "grant_type=client_credentials&resource=https%3A%2F%2Fapi.example%2F&resource=https%3A%2F%2Fother.example%2F",
			want: TokenRequest{
				Credentials: ClientCredentials{ID: "svc", Secret: "s3cret", Method: AuthSecretBasic}, GrantType: "client_credentials",
				Resources: []string{"https://api.example/", "https://other.example/"},
			},
		},
		{
			name: "resource of exactly 4096 bytes", method: "POST", contentType: form,
			body: "grant_type=client_credentials&client_id=app&resource=" + strings.Repeat("r", maxParamLen),
			want: TokenRequest{Credentials: ClientCredentials{ID: "app", Method: AuthNone}, GrantType: "client_credentials", Resources: []string{strings.Repeat("r", maxParamLen)}},
		},
		{name: "oversized resource", method: "POST", contentType: form, body: "grant_type=client_credentials&client_id=app&resource=https%3A%2F%2Fa.example%2F&resource=" + strings.Repeat("r", maxParamLen+1), wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 duplicate scope", method: "POST", contentType: form, body: "grant_type=client_credentials&scope=a&scope=b&client_id=app", wantCode: "invalid_request", wantStatus: 400},

		{name: "RFC 6749 §3.2 GET refused", method: "GET", target: "/token?" + body + "&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 PUT refused", method: "PUT", contentType: form, body: body + "&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "lower-case post method refused", method: "post", contentType: form, body: body + "&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "no content type", method: "POST", body: body + "&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "JSON content type", method: "POST", contentType: "application/json", body: `{"grant_type":"authorization_code"}`, wantCode: "invalid_request", wantStatus: 400},
		{name: "multipart content type", method: "POST", contentType: "multipart/form-data; boundary=x", body: "--x--", wantCode: "invalid_request", wantStatus: 400},
		{name: "text/plain content type", method: "POST", contentType: "text/plain", body: body + "&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "malformed content type", method: "POST", contentType: "application/x-www-form-urlencoded; charset", body: body + "&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "body of 64 KiB + 1", method: "POST", contentType: form, body: padTo(limit + 1), wantCode: "invalid_request", wantStatus: 400},
		{name: "body of 1 MiB", method: "POST", contentType: form, bodyReader: io.MultiReader(strings.NewReader("a="), strings.NewReader(strings.Repeat("a", 1<<20))), wantCode: "invalid_request", wantStatus: 400},
		{name: "malformed form encoding", method: "POST", contentType: form, body: "grant_type=authorization_code&code=%zz&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "semicolon separator", method: "POST", contentType: form, body: "grant_type=authorization_code;client_id=app", wantCode: "invalid_request", wantStatus: 400},

		{name: "RFC 6749 §3.2 duplicate code", method: "POST", contentType: form, body: body + "&code=c0de&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 duplicate grant_type", method: "POST", contentType: form, body: body + "&grant_type=authorization_code&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 duplicate client_id", method: "POST", contentType: form, body: body + "&client_id=app&client_id=web", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 duplicate client_secret", method: "POST", contentType: form, body: body + "&client_id=web&client_secret=a&client_secret=b", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 duplicate code_verifier", method: "POST", contentType: form, body: body + "&code_verifier=x&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 duplicate redirect_uri", method: "POST", contentType: form, body: body + "&redirect_uri=x&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §3.2 duplicate refresh_token", method: "POST", contentType: form, body: "grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "oversized code", method: "POST", contentType: form, body: "grant_type=authorization_code&client_id=app&code=" + strings.Repeat("c", maxParamLen+1), wantCode: "invalid_request", wantStatus: 400},

		{name: "RFC 6749 §2.3 basic and client_secret", method: "POST", contentType: form, auth: basic("web", "s"), body: body + "&client_secret=s", wantCode: "invalid_request", wantStatus: 400},
		{name: "basic and different body client_id", method: "POST", contentType: form, auth: basic("web", "s"), body: body + "&client_id=app", wantCode: "invalid_request", wantStatus: 400},
		{name: "RFC 6749 §5.2 no client authentication", method: "POST", contentType: form, body: body, wantCode: "invalid_client", wantStatus: 401},
		{name: "RFC 6749 §5.2 malformed Basic header", method: "POST", contentType: form, auth: "Basic !!!", body: body, wantCode: "invalid_client", wantStatus: 401},
		{name: "client credentials in the query do not count", method: "POST", contentType: form, target: "/token?client_id=app", body: body, wantCode: "invalid_client", wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/token"
			}
			var rd io.Reader = strings.NewReader(tt.body)
			if tt.bodyReader != nil {
				rd = tt.bodyReader
			}
			r := httptest.NewRequestWithContext(t.Context(), tt.method, target, rd)
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			got, e := ParseTokenRequest(w, r)
			if tt.wantCode != "" {
				wantError(t, e, tt.wantCode, tt.wantStatus)
				if !reflect.DeepEqual(got, TokenRequest{}) {
					t.Errorf("request = %+v returned with an error", got)
				}
				return
			}
			if e != nil {
				t.Fatalf("error = %v", e)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request =\n%+v\nwant\n%+v", got, tt.want)
			}
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("parsing wrote a response: %d %q", w.Code, w.Body.String())
			}
		})
	}
}

func TestParseTokenRequestTooLargeMessage(t *testing.T) {
	// The size limit must be reported as such, not as bad encoding.
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/token",
		strings.NewReader("client_id=app&x="+strings.Repeat("x", maxTokenRequestBody)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, e := ParseTokenRequest(httptest.NewRecorder(), r)
	wantError(t, e, "invalid_request", http.StatusBadRequest)
	if !strings.Contains(e.Description, "too large") {
		t.Errorf("description = %q, want it to say the body is too large", e.Description)
	}
}
