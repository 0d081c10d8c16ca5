package oauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxParamLen bounds any single protocol parameter. Real values (state,
// nonce, codes, verifiers, redirect URIs) are far shorter; a longer one is
// an attack or a bug, and refusing it early keeps it out of storage.
const maxParamLen = 4096

// singleParams checks that every parameter in names appears at most once
// (RFC 6749 §3.1 and §3.2: "Request and response parameters MUST NOT be
// included more than once") and is not oversized. Unknown parameters are
// ignored, as the RFC requires.
func singleParams(v url.Values, names ...string) *Error {
	for _, n := range names {
		vals := v[n]
		if len(vals) > 1 {
			return InvalidRequest(fmt.Sprintf("parameter %s is repeated", n))
		}
		if len(vals) == 1 && len(vals[0]) > maxParamLen {
			return InvalidRequest(fmt.Sprintf("parameter %s is too long", n))
		}
	}
	return nil
}

// parseScope splits a space-delimited scope (RFC 6749 §3.3), dropping
// empty entries and duplicates while keeping order.
func parseScope(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, sc := range strings.Split(s, " ") {
		if sc == "" || seen[sc] {
			continue
		}
		seen[sc] = true
		out = append(out, sc)
	}
	return out
}

// JoinScope is the inverse of parseScope.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }

// HasScope reports whether scopes contains s.
func HasScope(scopes []string, s string) bool {
	for _, x := range scopes {
		if x == s {
			return true
		}
	}
	return false
}

// CoversScopes reports whether every scope in want is in have.
func CoversScopes(have, want []string) bool {
	for _, w := range want {
		if !HasScope(have, w) {
			return false
		}
	}
	return true
}

// UnionScopes returns a followed by the scopes of b not in a.
func UnionScopes(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		if !HasScope(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// validScopeToken reports whether s is a scope-token per RFC 6749 §3.3:
// %x21 / %x23-5B / %x5D-7E.
func validScopeToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return s != ""
}

// ParseFormBody parses an application/x-www-form-urlencoded body of at most
// limit bytes. Unlike http.Request.ParseForm it never looks at the query
// string, so a malformed or hostile query cannot break a POST endpoint and
// query parameters never count as body parameters.
func ParseFormBody(w http.ResponseWriter, r *http.Request, limit int64) (url.Values, *Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, InvalidRequest("request body is too large")
		}
		return nil, InvalidRequest("request body could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, InvalidRequest("request body is not valid form encoding")
	}
	return form, nil
}
