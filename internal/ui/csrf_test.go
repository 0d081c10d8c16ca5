package ui

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// tokenOf returns the token CSRF.Token makes from 32 copies of b.
func tokenOf(b byte) string {
	return base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{b}, csrfTokenBytes))
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestCSRFToken(t *testing.T) {
	tests := []struct {
		name       string
		csrf       CSRF
		cookie     *http.Cookie // already on the request
		wantToken  string
		wantCookie string // Set-Cookie header; "" for none
	}{
		{
			name:       "new cookie, http issuer",
			csrf:       CSRF{Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 64))},
			wantToken:  tokenOf(7),
			wantCookie: "gatehouse_csrf=" + tokenOf(7) + "; Path=/; HttpOnly; SameSite=Lax",
		},
		{
			name:       "new cookie, https issuer",
			csrf:       CSRF{Secure: true, Rand: bytes.NewReader(bytes.Repeat([]byte{9}, 64))},
			wantToken:  tokenOf(9),
			wantCookie: "__Host-gatehouse_csrf=" + tokenOf(9) + "; Path=/; HttpOnly; Secure; SameSite=Lax",
		},
		{
			name:      "existing cookie reused",
			csrf:      CSRF{Rand: failingReader{}},
			cookie:    &http.Cookie{Name: "gatehouse_csrf", Value: tokenOf(1)},
			wantToken: tokenOf(1),
		},
		{
			name:      "existing secure cookie reused",
			csrf:      CSRF{Secure: true, Rand: failingReader{}},
			cookie:    &http.Cookie{Name: "__Host-gatehouse_csrf", Value: tokenOf(2)},
			wantToken: tokenOf(2),
		},
		{
			name:       "malformed cookie replaced",
			csrf:       CSRF{Rand: bytes.NewReader(bytes.Repeat([]byte{3}, 64))},
			cookie:     &http.Cookie{Name: "gatehouse_csrf", Value: "short"},
			wantToken:  tokenOf(3),
			wantCookie: "gatehouse_csrf=" + tokenOf(3) + "; Path=/; HttpOnly; SameSite=Lax",
		},
		{
			name:       "cookie under the other name is not used",
			csrf:       CSRF{Secure: true, Rand: bytes.NewReader(bytes.Repeat([]byte{4}, 64))},
			cookie:     &http.Cookie{Name: "gatehouse_csrf", Value: tokenOf(5)},
			wantToken:  tokenOf(4),
			wantCookie: "__Host-gatehouse_csrf=" + tokenOf(4) + "; Path=/; HttpOnly; Secure; SameSite=Lax",
		},
		{
			name:      "no randomness, no token",
			csrf:      CSRF{Rand: failingReader{}},
			wantToken: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/login", nil)
			if tt.cookie != nil {
				r.AddCookie(tt.cookie)
			}
			w := httptest.NewRecorder()
			if got := tt.csrf.Token(w, r); got != tt.wantToken {
				t.Errorf("token = %q, want %q", got, tt.wantToken)
			}
			if got := w.Header().Get("Set-Cookie"); got != tt.wantCookie {
				t.Errorf("Set-Cookie = %q, want %q", got, tt.wantCookie)
			}
		})
	}
}

func TestCSRFTokenIsRandom256Bits(t *testing.T) {
	var c CSRF // crypto/rand
	a := c.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	b := c.Token(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil || len(raw) != 32 {
		t.Fatalf("token %q decodes to %d bytes (%v), want 32", a, len(raw), err)
	}
	if a == b {
		t.Error("two fresh tokens are equal")
	}
}

func TestCSRFVerify(t *testing.T) {
	good, other := tokenOf(1), tokenOf(2)
	tests := []struct {
		name   string
		secure bool
		cookie *http.Cookie
		field  *string // nil: no field in the body
		query  string  // raw query string
		want   bool
	}{
		{"match", false, &http.Cookie{Name: "gatehouse_csrf", Value: good}, &good, "", true},
		{"match, secure", true, &http.Cookie{Name: "__Host-gatehouse_csrf", Value: good}, &good, "", true},
		{"mismatch", false, &http.Cookie{Name: "gatehouse_csrf", Value: good}, &other, "", false},
		{"missing cookie", false, nil, &good, "", false},
		{"missing field", false, &http.Cookie{Name: "gatehouse_csrf", Value: good}, nil, "", false},
		{"field only in query string", false, &http.Cookie{Name: "gatehouse_csrf", Value: good}, nil, "csrf_token=" + good, false},
		{"both empty", false, &http.Cookie{Name: "gatehouse_csrf", Value: ""}, ptr(""), "", false},
		{"equal but malformed", false, &http.Cookie{Name: "gatehouse_csrf", Value: "abc"}, ptr("abc"), "", false},
		{"secure wants the __Host- cookie", true, &http.Cookie{Name: "gatehouse_csrf", Value: good}, &good, "", false},
		{"http ignores the __Host- cookie", false, &http.Cookie{Name: "__Host-gatehouse_csrf", Value: good}, &good, "", false},
		{"one character off", false, &http.Cookie{Name: "gatehouse_csrf", Value: good}, ptr(good[:42] + "B"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"email": {"a@example.com"}}
			if tt.field != nil {
				form.Set("csrf_token", *tt.field)
			}
			target := "/login"
			if tt.query != "" {
				target += "?" + tt.query
			}
			r := httptest.NewRequest("POST", target, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.cookie != nil {
				r.AddCookie(tt.cookie)
			}
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			if got := (CSRF{Secure: tt.secure}).Verify(r); got != tt.want {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// The whole round trip: a GET gets a token and cookie, the POST that
// carries both back verifies.
func TestCSRFRoundTrip(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[secure]
		t.Run(name, func(t *testing.T) {
			c := CSRF{Secure: secure}
			w := httptest.NewRecorder()
			token := c.Token(w, httptest.NewRequest("GET", "/login", nil))
			cookies := w.Result().Cookies()
			if len(cookies) != 1 {
				t.Fatalf("%d cookies set, want 1", len(cookies))
			}
			ck := cookies[0]
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.Secure != secure {
				t.Errorf("cookie attributes: %+v", ck)
			}
			if secure != strings.HasPrefix(ck.Name, "__Host-") {
				t.Errorf("cookie name %q for secure=%v", ck.Name, secure)
			}
			body := url.Values{"csrf_token": {token}}.Encode()
			r := httptest.NewRequest("POST", "/login", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
			if !c.Verify(r) {
				t.Error("a token does not verify against its own cookie")
			}
		})
	}
}
