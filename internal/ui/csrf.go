package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net/http"
)

// Cookie names of the CSRF token. The __Host- prefix (RFC 6265bis §4.1.3.2)
// makes browsers accept the cookie only if it is Secure, has Path=/ and no
// Domain, so a sibling subdomain cannot plant its own token.
const (
	csrfCookie       = "gatehouse_csrf"
	csrfCookieSecure = "__Host-gatehouse_csrf"
	csrfField        = "csrf_token"
	csrfTokenBytes   = 32 // 256 bits
)

// CSRF protects forms with a double-submit token: a random value in a
// cookie that every form repeats in its csrf_token field. Another site can
// make a browser send the cookie but cannot read it, so it cannot fill in
// the field. SameSite=Lax on the cookie is a second, independent barrier.
type CSRF struct {
	// Secure is true when the issuer is https: the cookie is then Secure
	// and named with the __Host- prefix.
	Secure bool
	// Rand is the source of tokens; nil means crypto/rand.
	Rand io.Reader
}

func (c CSRF) cookieName() string {
	if c.Secure {
		return csrfCookieSecure
	}
	return csrfCookie
}

// Token returns the value to put in the csrf_token field of a form. It
// reuses the request's CSRF cookie, so that several tabs share one token,
// and otherwise makes a new one and sets the cookie on w (call it before
// writing the response). If no randomness can be read it returns "", which
// Verify never accepts.
func (c CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(c.cookieName()); err == nil && validToken(ck.Value) {
		return ck.Value
	}
	rnd := c.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	b := make([]byte, csrfTokenBytes)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return ""
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name:     c.cookieName(),
		Value:    token,
		Path:     "/",
		HttpOnly: true,
		Secure:   c.Secure,
		SameSite: http.SameSiteLaxMode,
	})
	return token
}

// Verify reports whether the request's csrf_token form field matches its
// CSRF cookie. Call it after r.ParseForm (it reads r.PostFormValue, so it
// parses the body itself if needed); only the body counts, never the query
// string, which ends up in logs and Referer headers. An empty or malformed
// token never matches. The comparison takes the same time wherever the
// values differ.
func (c CSRF) Verify(r *http.Request) bool {
	ck, err := r.Cookie(c.cookieName())
	if err != nil || !validToken(ck.Value) {
		return false
	}
	field := r.PostFormValue(csrfField)
	if !validToken(field) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(field), []byte(ck.Value)) == 1
}

// validToken: exactly what Token makes, 32 bytes as unpadded base64url.
func validToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(csrfTokenBytes) {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
