package clients_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-idp/gatehouse/internal/clients"
)

func TestValidateRedirectURI(t *testing.T) {
	const (
		web    = clients.ApplicationTypeWeb
		native = clients.ApplicationTypeNative
	)
	long := "https://a.example/" + strings.Repeat("x", 2000-len("https://a.example/"))
	tests := []struct {
		name    string
		uri     string
		appType string
		ok      bool
	}{
		{"https", "https://a.example/cb", web, true},
		{"https with port, query", "https://a.example:8443/cb?tenant=1&x=%20y", web, true},
		{"https for native (claimed https, RFC 8252 §7.2)", "https://a.example/cb", native, true},
		{"https without path", "https://a.example", web, true},
		{"https IP", "https://192.0.2.1/cb", web, true},
		{"https upper-case scheme is refused: only the exact spelling would ever match", "HTTPS://a.example/cb", web, false},
		{"empty application type is web", "https://a.example/cb", "", true},
		{"http 127.0.0.1", "http://127.0.0.1/cb", web, true},
		{"http 127.0.0.1 with port", "http://127.0.0.1:51004/cb", native, true},
		{"http [::1]", "http://[::1]:8080/cb", native, true},
		{"http localhost", "http://localhost:3000/cb", web, true},
		{"http LOCALHOST is refused: matching is exact and knows only lower-case localhost", "http://LOCALHOST/cb", web, false},
		{"private-use scheme, native", "com.example.app:/oauth2redirect/example-provider", native, true},
		{"private-use scheme with authority, native", "com.example.app://callback", native, true},
		{"exactly 2000 characters", long, web, true},

		{"empty", "", web, false},
		{"relative", "/cb", web, false},
		{"scheme-relative", "//a.example/cb", web, false},
		{"no scheme", "a.example/cb", web, false},
		{"fragment", "https://a.example/cb#x", web, false},
		{"empty fragment", "https://a.example/cb#", web, false},
		{"javascript", "javascript:alert(1)", web, false},
		{"javascript, native", "javascript:alert(1)", native, false},
		{"JavaScript mixed case", "JavaScript:alert(1)", native, false},
		{"javascript with slashes", "javascript://a.example/%0Aalert(1)", native, false},
		{"data", "data:text/html,x", web, false},
		{"data, native", "data:text/html,x", native, false},
		{"vbscript", "vbscript:msgbox(1)", native, false},
		{"file", "file:///etc/passwd", native, false},
		{"blob", "blob:https://a.example/uuid", native, false},
		{"http non-loopback", "http://example.com/cb", web, false},
		{"http non-loopback, native", "http://example.com/cb", native, false},
		{"upper-case scheme", "HTTP://127.0.0.1/cb", native, false},
		{"mixed-case https scheme", "Https://a.example/cb", web, false},
		{"upper-case localhost", "http://LOCALHOST/cb", native, false},
		{"http localhost as a subdomain", "http://localhost.evil.test/cb", web, false},
		{"http localhost prefix", "http://localhostevil.test/cb", web, false},
		{"http 127.0.0.1 as a subdomain", "http://127.0.0.1.evil.test/cb", web, false},
		{"http localhost with trailing dot", "http://localhost./cb", web, false},
		{"http 127.1 shorthand", "http://127.1/cb", web, false},
		{"http 0.0.0.0", "http://0.0.0.0/cb", web, false},
		{"http without host", "http:///cb", web, false},
		{"http opaque", "http:localhost", web, false},
		{"userinfo", "https://user@evil.example/cb", web, false},
		{"userinfo that looks like a host", "https://good.example@evil.example/cb", web, false},
		{"userinfo with password", "https://user:pw@a.example/cb", web, false},
		{"userinfo on loopback", "http://evil.example@127.0.0.1/cb", web, false},
		{"empty userinfo", "https://@a.example/cb", web, false},
		{"https without host", "https:///cb", web, false},
		{"https opaque", "https:a.example/cb", web, false},
		{"bad port", "https://a.example:port/cb", web, false},
		{"backslash", `https://evil.example\@good.example/cb`, web, false},
		{"space", "https://a.example/c b", web, false},
		{"leading space", " https://a.example/cb", web, false},
		{"newline", "https://a.example/cb\n", web, false},
		{"tab in scheme", "java\tscript:alert(1)", native, false},
		{"NUL", "https://a.example/cb\x00", web, false},
		{"non-ASCII", "https://exämple.test/cb", web, false},
		{"quote", `https://a.example/"cb`, web, false},
		{"angle bracket", "https://a.example/<cb>", web, false},
		{"bad percent-encoding", "https://a.example/%zz", web, false},
		{"truncated percent-encoding", "https://a.example/cb%2", web, false},
		{"over 2000 characters", long + "x", web, false},
		{"private-use scheme, web", "com.example.app:/callback", web, false},
		{"private-use scheme, default type", "com.example.app:/callback", "", false},
		{"custom scheme without a period", "myapp:/callback", native, false},
		{"custom scheme, nothing after it", "com.example.app:", native, false},
		{"custom scheme with userinfo", "com.example.app://user@host/cb", native, false},
		{"custom scheme with fragment", "com.example.app:/cb#x", native, false},
		{"unknown application type", "https://a.example/cb", "browser", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := clients.ValidateRedirectURI(tt.uri, tt.appType)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateRedirectURI(%q, %q) = %v, want nil", tt.uri, tt.appType, err)
				}
				return
			}
			var re *clients.RegistrationError
			if !errors.As(err, &re) {
				t.Fatalf("ValidateRedirectURI(%q, %q) = %v (%T), want *RegistrationError", tt.uri, tt.appType, err, err)
			}
			wantCode := clients.CodeInvalidRedirectURI
			if tt.name == "unknown application type" {
				wantCode = clients.CodeInvalidClientMetadata
			}
			if re.Code != wantCode {
				t.Errorf("Code = %q, want %q", re.Code, wantCode)
			}
			t.Logf("%s", re.Description)
		})
	}
}

// FuzzValidateRedirectURI checks that ValidateRedirectURI never panics and
// that whatever it accepts is an absolute URL without fragment or userinfo,
// in a scheme a browser will not execute. Run it with
//
//	go test -run '^$' -fuzz FuzzValidateRedirectURI -fuzztime 1m -fuzzminimizetime 5s ./internal/clients
//
// (-fuzzminimizetime works around the fuzzer stalling while it minimizes,
// golang/go#48820.)
func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{
		"https://a.example/cb", "http://127.0.0.1:8080/cb", "http://[::1]/cb",
		"http://localhost/cb", "com.example.app:/cb", "com.example.app://cb",
		"https://a.example/cb#x", "javascript:alert(1)", "data:text/html,x",
		"http://example.com/cb", "http://localhost.evil.test/cb",
		"https://user@evil.example/cb", `https://a\@b/`, "https://a.example/%zz",
		"HTTP://LOCALHOST:1/?q=%41", "http://[::1%25eth0]/", "https://[::ffff:127.0.0.1]/",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, native bool) {
		appType := clients.ApplicationTypeWeb
		if native {
			appType = clients.ApplicationTypeNative
		}
		if clients.ValidateRedirectURI(raw, appType) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, err)
		}
		if !u.IsAbs() {
			t.Fatalf("accepted %q, which is not absolute", raw)
		}
		if strings.Contains(raw, "#") || u.Fragment != "" {
			t.Fatalf("accepted %q, which has a fragment", raw)
		}
		if u.User != nil {
			t.Fatalf("accepted %q, which has userinfo", raw)
		}
		if len(raw) > clients.MaxURILen {
			t.Fatalf("accepted %d characters", len(raw))
		}
		switch u.Scheme {
		case "https":
			if u.Hostname() == "" {
				t.Fatalf("accepted %q: https without host", raw)
			}
		case "http":
			if h := u.Hostname(); h != "127.0.0.1" && h != "::1" && !strings.EqualFold(h, "localhost") {
				t.Fatalf("accepted %q: http on non-loopback host %q", raw, h)
			}
		default:
			if !native {
				t.Fatalf("accepted %q: scheme %q for a web client", raw, u.Scheme)
			}
			if !strings.Contains(u.Scheme, ".") {
				t.Fatalf("accepted %q: private-use scheme without a period", raw)
			}
		}
		for _, c := range raw {
			if c <= ' ' || c >= 0x7f || c == '\\' {
				t.Fatalf("accepted %q, which contains %q", raw, c)
			}
		}
	})
}
