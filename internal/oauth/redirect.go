package oauth

import (
	"strconv"
	"strings"
)

// MatchRedirectURI reports whether requested is one of the registered
// redirect URIs.
//
// RFC 6749 §3.1.2.3 and RFC 9700 §4.1.3: comparison is exact string
// comparison, with no normalization of case, trailing slashes, dot
// segments, percent-encoding or default ports — every normalization an IdP
// has performed has eventually been turned into an open redirect.
//
// The one exception is RFC 8252 §7.3: for native clients, an http loopback
// redirect URI matches whatever port the request names, because the app
// learns its ephemeral port only at run time. Everything else, host
// spelling included, must still match exactly (127.0.0.1 does not match
// localhost).
func MatchRedirectURI(registered []string, requested string, native bool) bool {
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	if !native {
		return false
	}
	reqHost, reqRest, ok := splitLoopback(requested)
	if !ok {
		return false
	}
	for _, r := range registered {
		host, rest, ok := splitLoopback(r)
		if ok && host == reqHost && rest == reqRest {
			return true
		}
	}
	return false
}

// splitLoopback splits an http loopback URI into its host and everything
// after the port ("/path?query"), working on the string itself so nothing
// is normalized. It refuses anything with userinfo, a fragment, or a port
// that is not a plain decimal number in range.
func splitLoopback(uri string) (host, rest string, ok bool) {
	const scheme = "http://"
	if !strings.HasPrefix(uri, scheme) || strings.ContainsAny(uri, "#\\") {
		return "", "", false
	}
	s := uri[len(scheme):]
	end := strings.IndexAny(s, "/?")
	authority := s
	if end >= 0 {
		authority, rest = s[:end], s[end:]
	}
	if strings.Contains(authority, "@") {
		return "", "", false
	}
	for _, h := range []string{"127.0.0.1", "[::1]", "localhost"} {
		if !strings.HasPrefix(authority, h) {
			continue
		}
		port := authority[len(h):]
		if port == "" {
			return h, rest, true
		}
		if port[0] != ':' || !validPort(port[1:]) {
			return "", "", false
		}
		return h, rest, true
	}
	return "", "", false
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n <= 65535
}
