package oauth

import (
	"net/url"
	"strings"
	"testing"
)

func TestMatchRedirectURIExact(t *testing.T) {
	// RFC 6749 §3.1.2.3 and RFC 9700 §4.1.3: simple string comparison, no
	// normalization of any kind. Each case is a normalization some IdP once
	// performed and that later became an open redirect.
	registered := []string{
		"https://client.example/cb",
		"https://client.example/dir/",
		"https://client.example/q?tenant=a&x=%2F",
		"https://client.example/enc/a%2Fb",
	}
	tests := []struct {
		name      string
		requested string
		want      bool
	}{
		{"RFC 6749 §3.1.2.3 identical", "https://client.example/cb", true},
		{"identical with trailing slash as registered", "https://client.example/dir/", true},
		{"identical with registered query", "https://client.example/q?tenant=a&x=%2F", true},
		{"identical with registered percent-encoding", "https://client.example/enc/a%2Fb", true},

		{"trailing slash added", "https://client.example/cb/", false},
		{"trailing slash removed", "https://client.example/dir", false},
		{"scheme upper case", "HTTPS://client.example/cb", false},
		{"scheme mixed case", "Https://client.example/cb", false},
		{"host upper case", "https://CLIENT.EXAMPLE/cb", false},
		{"host mixed case", "https://Client.example/cb", false},
		{"path upper case", "https://client.example/CB", false},
		{"host trailing dot", "https://client.example./cb", false},
		{"query added", "https://client.example/cb?x=1", false},
		{"empty query added", "https://client.example/cb?", false},
		{"query changed", "https://client.example/q?tenant=b&x=%2F", false},
		{"query reordered", "https://client.example/q?x=%2F&tenant=a", false},
		{"query appended to registered query", "https://client.example/q?tenant=a&x=%2F&y=1", false},
		{"fragment added", "https://client.example/cb#frag", false},
		{"empty fragment added", "https://client.example/cb#", false},
		{"RFC 9700 §4.1.3 dot-dot-semicolon", "https://client.example/cb/..;/evil", false},
		{"dot-dot-semicolon before path", "https://client.example/..;/cb", false},
		{"RFC 3986 §5.2.4 dot segments resolving to registered", "https://client.example/evil/../cb", false},
		{"dot segments leaving registered", "https://client.example/cb/../evil", false},
		{"single dot segment", "https://client.example/./cb", false},
		{"percent-encoded slash upper", "https://client.example/cb%2F", false},
		{"percent-encoded slash lower", "https://client.example/cb%2f", false},
		{"registered %2F sent as %2f", "https://client.example/enc/a%2fb", false},
		{"registered %2F sent decoded", "https://client.example/enc/a/b", false},
		{"unreserved char percent-encoded", "https://client.example/%63b", false},
		{"registered query %2F sent as %2f", "https://client.example/q?tenant=a&x=%2f", false},
		{"RFC 3986 §7.6 userinfo good@evil", "https://client.example@evil.example/cb", false},
		{"userinfo prefix", "https://user@client.example/cb", false},
		{"default port :443 added", "https://client.example:443/cb", false},
		{"empty port added", "https://client.example:/cb", false},
		{"other port", "https://client.example:8443/cb", false},
		{"http instead of https", "http://client.example/cb", false},
		{"backslash path", "https://client.example\\cb", false},
		{"backslash authority", "https://client.example\\@evil.example/cb", false},
		{"suffix domain", "https://client.example.evil.example/cb", false},
		{"leading space", " https://client.example/cb", false},
		{"trailing space", "https://client.example/cb ", false},
		{"trailing newline", "https://client.example/cb\n", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		for _, native := range []bool{false, true} {
			name := tt.name
			if native {
				name += "/native"
			}
			t.Run(name, func(t *testing.T) {
				if got := MatchRedirectURI(registered, tt.requested, native); got != tt.want {
					t.Errorf("MatchRedirectURI(%q, native=%v) = %v, want %v", tt.requested, native, got, tt.want)
				}
			})
		}
	}
}

func TestMatchRedirectURILoopback(t *testing.T) {
	// RFC 8252 §7.3: for native apps the authorization server MUST allow
	// any port on a loopback IP redirect URI. Nothing else may vary.
	registered := []string{
		"http://127.0.0.1/cb",
		"http://[::1]/cb",
		"http://localhost/cb",
		"http://127.0.0.1:3000/with-port",
		"http://127.0.0.1/q?a=1",
		"com.example.app:/oauth2redirect",
		"https://127.0.0.1/tls",
	}
	tests := []struct {
		name       string
		registered []string // defaults to registered above
		requested  string
		native     bool
		want       bool
	}{
		{"RFC 8252 §7.3 127.0.0.1 other port", nil, "http://127.0.0.1:51234/cb", true, true},
		{"RFC 8252 §7.3 [::1] other port", nil, "http://[::1]:51234/cb", true, true},
		{"RFC 8252 §7.3 localhost other port", nil, "http://localhost:51234/cb", true, true},
		{"port 1", nil, "http://127.0.0.1:1/cb", true, true},
		{"port 65535", nil, "http://127.0.0.1:65535/cb", true, true},
		{"registered with port, requested other port", nil, "http://127.0.0.1:4000/with-port", true, true},
		{"registered with port, requested without", nil, "http://127.0.0.1/with-port", true, true},
		{"port change keeps registered query", nil, "http://127.0.0.1:8080/q?a=1", true, true},
		{"loopback only host and port, no path", []string{"http://127.0.0.1"}, "http://127.0.0.1:8080", true, true},

		// RFC 8252 §8.3: each loopback spelling only matches itself.
		{"127.0.0.1 registered, localhost requested", []string{"http://127.0.0.1/cb"}, "http://localhost:8080/cb", true, false},
		{"127.0.0.1 registered, [::1] requested", []string{"http://127.0.0.1/cb"}, "http://[::1]:8080/cb", true, false},
		{"[::1] registered, 127.0.0.1 requested", []string{"http://[::1]/cb"}, "http://127.0.0.1:8080/cb", true, false},
		{"[::1] registered, localhost requested", []string{"http://[::1]/cb"}, "http://localhost:8080/cb", true, false},
		{"localhost registered, 127.0.0.1 requested", []string{"http://localhost/cb"}, "http://127.0.0.1:8080/cb", true, false},
		{"localhost registered, [::1] requested", []string{"http://localhost/cb"}, "http://[::1]:8080/cb", true, false},
		{"other 127/8 address", nil, "http://127.0.0.2:8080/cb", true, false},
		{"long form IPv6 loopback", nil, "http://[0:0:0:0:0:0:0:1]:8080/cb", true, false},
		{"localhost upper case", nil, "http://LOCALHOST:8080/cb", true, false},
		{"scheme upper case", nil, "HTTP://127.0.0.1:8080/cb", true, false},

		{"port 0", nil, "http://127.0.0.1:0/cb", true, false},
		{"port 00000", nil, "http://127.0.0.1:00000/cb", true, false},
		{"port with a leading zero", nil, "http://127.0.0.1:080/cb", true, false},
		{"[::1] port with a leading zero", nil, "http://[::1]:08080/cb", true, false},
		{"localhost port with a leading zero", nil, "http://localhost:01/cb", true, false},
		{"registered port with a leading zero, requested exactly", []string{"http://127.0.0.1:080/cb"}, "http://127.0.0.1:080/cb", true, true},
		{"registered port with a leading zero gets no port exception", []string{"http://127.0.0.1:080/cb"}, "http://127.0.0.1:80/cb", true, false},
		{"port 65536", nil, "http://127.0.0.1:65536/cb", true, false},
		{"port 99999", nil, "http://127.0.0.1:99999/cb", true, false},
		{"port 6 digits", nil, "http://127.0.0.1:123456/cb", true, false},
		{"port non-numeric", nil, "http://127.0.0.1:http/cb", true, false},
		{"port with plus sign", nil, "http://127.0.0.1:+80/cb", true, false},
		{"port with minus sign", nil, "http://127.0.0.1:-80/cb", true, false},
		{"port hex", nil, "http://127.0.0.1:0x50/cb", true, false},
		{"empty port", nil, "http://127.0.0.1:/cb", true, false},
		{"double colon port", nil, "http://127.0.0.1::80/cb", true, false},
		{"port with space", nil, "http://127.0.0.1: 80/cb", true, false},
		{"port with percent-encoding", nil, "http://127.0.0.1:%38%30/cb", true, false},
		{"[::1] port 65536", nil, "http://[::1]:65536/cb", true, false},
		{"localhost non-numeric port", nil, "http://localhost:abc/cb", true, false},

		{"localhost as subdomain prefix", nil, "http://localhost.evil.test/cb", true, false},
		{"localhost as subdomain prefix with port", nil, "http://localhost.evil.test:8080/cb", true, false},
		{"127.0.0.1 as subdomain prefix", nil, "http://127.0.0.1.evil.test/cb", true, false},
		{"127.0.0.1 as subdomain prefix with port", nil, "http://127.0.0.1.evil.test:8080/cb", true, false},
		{"127.0.0.10", nil, "http://127.0.0.10:8080/cb", true, false},
		{"localhost suffix", nil, "http://localhostevil.test:8080/cb", true, false},
		{"RFC 3986 §7.6 loopback as userinfo", nil, "http://127.0.0.1:8080@evil.example/cb", true, false},
		{"loopback as userinfo without port", nil, "http://127.0.0.1@evil.example/cb", true, false},
		{"localhost as userinfo", nil, "http://localhost:8080@evil.example/cb", true, false},
		{"userinfo before loopback", nil, "http://user@127.0.0.1:8080/cb", true, false},
		{"backslash after port", nil, "http://127.0.0.1:8080\\@evil.example/cb", true, false},
		{"backslash in path", nil, "http://127.0.0.1:8080/cb\\..\\evil", true, false},
		{"backslash path separator", nil, "http://127.0.0.1:8080\\cb", true, false},
		{"backslash in a registered path gets no port exception", []string{"http://127.0.0.1/a\\b"}, "http://127.0.0.1:8080/a\\b", true, false},
		{"fragment in a registered URI gets no port exception", []string{"http://127.0.0.1/cb#x"}, "http://127.0.0.1:8080/cb#x", true, false},
		{"fragment with port change", nil, "http://127.0.0.1:8080/cb#frag", true, false},
		{"empty fragment with port change", nil, "http://127.0.0.1:8080/cb#", true, false},

		{"different path with port change", nil, "http://127.0.0.1:8080/other", true, false},
		{"path prefix with port change", nil, "http://127.0.0.1:8080/cb/extra", true, false},
		{"trailing slash with port change", nil, "http://127.0.0.1:8080/cb/", true, false},
		{"path case with port change", nil, "http://127.0.0.1:8080/CB", true, false},
		{"dot segment with port change", nil, "http://127.0.0.1:8080/x/../cb", true, false},
		{"percent-encoded path with port change", nil, "http://127.0.0.1:8080/%63b", true, false},
		{"query added with port change", nil, "http://127.0.0.1:8080/cb?x=1", true, false},
		{"empty query added with port change", nil, "http://127.0.0.1:8080/cb?", true, false},
		{"query changed with port change", nil, "http://127.0.0.1:8080/q?a=2", true, false},
		{"query dropped with port change", nil, "http://127.0.0.1:8080/q", true, false},
		{"path dropped with port change", []string{"http://127.0.0.1/cb"}, "http://127.0.0.1:8080", true, false},

		{"RFC 8252 §7.3 is http only: https port change", nil, "https://127.0.0.1:8443/tls", true, false},
		{"private-use scheme exact", nil, "com.example.app:/oauth2redirect", true, true},
		{"private-use scheme path change", nil, "com.example.app:/oauth2redirect/", true, false},
		{"private-use scheme port-like authority", nil, "com.example.app://127.0.0.1:80/oauth2redirect", true, false},

		// A web client gets no port exception (RFC 8252 applies to native
		// apps only), not even on loopback.
		{"web client 127.0.0.1 other port", nil, "http://127.0.0.1:51234/cb", false, false},
		{"web client [::1] other port", nil, "http://[::1]:51234/cb", false, false},
		{"web client localhost other port", nil, "http://localhost:51234/cb", false, false},
		{"web client exact loopback", nil, "http://127.0.0.1/cb", false, true},
		{"web client registered port exact", nil, "http://127.0.0.1:3000/with-port", false, true},

		{"no registered URIs", []string{}, "http://127.0.0.1:8080/cb", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := tt.registered
			if reg == nil {
				reg = registered
			}
			if got := MatchRedirectURI(reg, tt.requested, tt.native); got != tt.want {
				t.Errorf("MatchRedirectURI(%q, %q, native=%v) = %v, want %v", reg, tt.requested, tt.native, got, tt.want)
			}
		})
	}
}

func TestValidPort(t *testing.T) {
	tests := []struct {
		port string
		want bool
	}{
		{"1", true}, {"80", true}, {"65535", true},
		{"", false}, {"0", false}, {"65536", false}, {"100000", false},
		{"+80", false}, {"-1", false}, {"8a", false}, {" 80", false}, {"80 ", false},
		// A leading zero would make two spellings of one port.
		{"080", false}, {"01", false}, {"08080", false}, {"00", false},
		{"٣", false}, // a non-ASCII digit
	}
	for _, tt := range tests {
		t.Run("port "+tt.port, func(t *testing.T) {
			if got := validPort(tt.port); got != tt.want {
				t.Errorf("validPort(%q) = %v, want %v", tt.port, got, tt.want)
			}
		})
	}
}

// plausibleRegistered reports whether r could have passed client
// registration: an absolute URI that url.Parse accepts, without userinfo or
// fragment. The fuzz properties only hold for such URIs: the exact-match
// branch trusts whatever was registered.
func plausibleRegistered(r string) bool {
	if strings.ContainsAny(r, "#\\") {
		return false
	}
	u, err := url.Parse(r)
	return err == nil && u.IsAbs() && u.User == nil
}

func FuzzMatchRedirectURI(f *testing.F) {
	seeds := []struct {
		registered, requested string
		native                bool
	}{
		{"https://client.example/cb", "https://client.example/cb", false},
		{"https://client.example/cb", "https://client.example/cb/", false},
		{"https://client.example/cb", "https://client.example@evil.example/cb", false},
		{"https://client.example/cb", "https://client.example:443/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:8080/cb", true},
		{"http://[::1]/cb", "http://[::1]:8080/cb", true},
		{"http://localhost/cb?a=1", "http://localhost:8080/cb?a=1", true},
		{"http://localhost/cb", "http://localhost.evil.test/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1.evil.test/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:8080@evil.example/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:8080\\@evil.example/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:+80/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:0/cb", true},
		{"http://127.0.0.1:3000", "http://127.0.0.1:4000?x", true},
		{"com.example.app:/cb", "com.example.app:/cb", true},
	}
	for _, s := range seeds {
		f.Add(s.registered, s.requested, s.native)
	}
	f.Fuzz(func(t *testing.T, registered, requested string, native bool) {
		got := MatchRedirectURI([]string{registered}, requested, native)
		if !got {
			return
		}
		if registered == requested {
			return // RFC 6749 §3.1.2.3: identical strings always match
		}
		// Anything other than an identical string is a match only through
		// the RFC 8252 §7.3 loopback port exception.
		if !native {
			t.Fatalf("web client: %q matched registered %q although the strings differ", requested, registered)
		}
		if !plausibleRegistered(registered) {
			return
		}
		ru, err := url.Parse(registered)
		if err != nil {
			t.Fatalf("registered %q: %v", registered, err)
		}
		qu, err := url.Parse(requested)
		if err != nil {
			t.Fatalf("native: %q matched registered %q but does not parse: %v", requested, registered, err)
		}
		switch {
		case strings.ContainsAny(requested, "#\\"):
			t.Fatalf("native: %q with a fragment or backslash matched %q", requested, registered)
		case qu.User != nil || ru.User != nil:
			t.Fatalf("native: %q with userinfo matched %q", requested, registered)
		case qu.Fragment != "" || qu.RawFragment != "":
			t.Fatalf("native: %q with a fragment matched %q", requested, registered)
		case qu.Scheme != "http" || ru.Scheme != "http":
			t.Fatalf("native: port exception applied to non-http %q / %q", requested, registered)
		case qu.Hostname() != ru.Hostname():
			t.Fatalf("native: %q (host %q) matched %q (host %q)", requested, qu.Hostname(), registered, ru.Hostname())
		case !isLoopbackLiteral(qu.Hostname()):
			t.Fatalf("native: port exception applied to non-loopback host %q", qu.Hostname())
		case qu.EscapedPath() != ru.EscapedPath() || qu.RawQuery != ru.RawQuery || qu.ForceQuery != ru.ForceQuery:
			t.Fatalf("native: %q (path %q query %q) matched %q (path %q query %q)",
				requested, qu.EscapedPath(), qu.RawQuery, registered, ru.EscapedPath(), ru.RawQuery)
		}
		if p := qu.Port(); p != "" && !validPort(p) {
			t.Fatalf("native: %q with port %q matched %q", requested, p, registered)
		}
	})
}

func isLoopbackLiteral(host string) bool {
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}
